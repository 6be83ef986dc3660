{{/* ingress.<id>: an Ingress whose paths name a service identifier and a port name. */}}
{{- define "common.render.ingresses" -}}
{{- range $id, $i := .Values.ingress }}
{{- if ne $i.enabled false }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "common.name" (list $ $id) }}
  labels:
    {{- include "common.labels" (list $ $i.labels) | nindent 4 }}
  {{- with (include "common.annotations" (list $ $i.annotations)) }}{{ . | nindent 2 }}{{ end }}
spec:
  {{- with $i.className }}
  ingressClassName: {{ . }}
  {{- end }}
  rules:
    {{- range $i.hosts }}
    - host: {{ .host | quote }}
      http:
        paths:
          {{- range .paths }}
          {{- $svc := .service.identifier }}
          {{- if not (hasKey $.Values.service $svc) }}
          {{- fail (printf "ingress.%s: path %s names service.%s, which the values do not have" $id .path $svc) }}
          {{- end }}
          - path: {{ .path | default "/" }}
            pathType: {{ .pathType | default "Prefix" }}
            backend:
              service:
                name: {{ include "common.name" (list $ $svc) }}
                port:
                  name: {{ .service.port | default "http" }}
          {{- end }}
    {{- end }}
{{- end }}
{{- end }}
{{- end -}}
