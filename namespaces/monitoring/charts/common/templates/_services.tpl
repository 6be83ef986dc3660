{{/* service.<id>: a Service <release>[-<id>] selecting its controller's pods. */}}
{{- define "common.render.services" -}}
{{- range $id, $s := .Values.service }}
{{- if ne $s.enabled false }}
{{- $controller := $s.controller | default $id }}
{{- if not (hasKey $.Values.controllers $controller) }}
{{- fail (printf "service.%s.controller: there is no controllers.%s" $id $controller) }}
{{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "common.name" (list $ $id) }}
  labels:
    {{- include "common.labels" (list $ $s.labels) | nindent 4 }}
  {{- with (include "common.annotations" (list $ $s.annotations)) }}{{ . | nindent 2 }}{{ end }}
spec:
  type: {{ $s.type | default "ClusterIP" }}
  selector:
    {{- include "common.selectorLabels" (list $ $controller) | nindent 4 }}
  ports:
    {{- range $name, $port := $s.ports }}
    - name: {{ $name }}
      port: {{ $port.port }}
      targetPort: {{ $port.targetPort | default $name }}
      protocol: {{ $port.protocol | default "TCP" }}
    {{- end }}
{{- end }}
{{- end }}
{{- end -}}
