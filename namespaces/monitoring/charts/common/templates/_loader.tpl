{{/* What an application chart includes: every kind the values can ask for, in apply order. */}}
{{- define "common.loader.all" -}}
{{- include "common.render.persistence" . }}
{{- include "common.render.services" . }}
{{- include "common.render.controllers" . }}
{{- include "common.render.ingresses" . }}
{{- end -}}
