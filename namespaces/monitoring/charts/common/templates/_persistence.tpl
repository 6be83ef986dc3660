{{/* persistence.<id> of type persistentVolumeClaim (without existingClaim) makes a PVC <release>-<id>. */}}
{{- define "common.render.persistence" -}}
{{- range $id, $p := .Values.persistence }}
{{- if and (ne $p.enabled false) (eq ($p.type | default "persistentVolumeClaim") "persistentVolumeClaim") (not $p.existingClaim) }}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "common.name" (list $ $id) }}
  labels:
    {{- include "common.labels" (list $ $p.labels) | nindent 4 }}
  {{- with (include "common.annotations" (list $ $p.annotations)) }}{{ . | nindent 2 }}{{ end }}
spec:
  accessModes: [{{ $p.accessMode | default "ReadWriteOnce" }}]
  {{- with $p.storageClass }}
  storageClassName: {{ . }}
  {{- end }}
  resources:
    requests:
      storage: {{ $p.size | default "1Gi" }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The volumes of a controller's pod: every enabled persistence item (globalMounts reach every container). */}}
{{- define "common.volumes" -}}
{{- $root := . -}}
{{- range $id, $p := .Values.persistence }}
{{- if ne $p.enabled false }}
- name: {{ $id }}
  {{- $type := $p.type | default "persistentVolumeClaim" }}
  {{- if eq $type "persistentVolumeClaim" }}
  persistentVolumeClaim:
    claimName: {{ $p.existingClaim | default (include "common.name" (list $root $id)) }}
  {{- else if eq $type "configMap" }}
  configMap:
    name: {{ required (printf "persistence.%s.name: a configMap volume needs the ConfigMap's name" $id) $p.name }}
  {{- else if eq $type "secret" }}
  secret:
    secretName: {{ required (printf "persistence.%s.name: a secret volume needs the Secret's name" $id) $p.name }}
  {{- else if eq $type "emptyDir" }}
  emptyDir: {}
  {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "common.volumeMounts" -}}
{{- range $id, $p := .Values.persistence }}
{{- if ne $p.enabled false }}
{{- range $p.globalMounts }}
- name: {{ $id }}
  mountPath: {{ .path }}
  {{- if .readOnly }}
  readOnly: true
  {{- end }}
  {{- with .subPath }}
  subPath: {{ . }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
