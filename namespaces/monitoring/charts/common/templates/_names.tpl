{{/*
Names and labels. An object whose identifier is the release name is named after the release
alone (`grafana`); any other is `<release>-<identifier>` (`grafana-data`), as app-template names
them. Labels: app.kubernetes.io/name and instance are the release (what the dashboard groups
by), app.kubernetes.io/controller the controller's identifier (the Service selector's third key).
*/}}
{{- define "common.name" -}}
{{- $root := index . 0 -}}
{{- $id := index . 1 -}}
{{- if eq $id $root.Release.Name -}}
{{- $root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" $root.Release.Name $id | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "common.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ $root.Release.Name }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/controller: {{ index . 1 }}
{{- end -}}

{{/* Every object's labels: the chart's, then global.labels, then the object's own. */}}
{{- define "common.labels" -}}
{{- $root := index . 0 -}}
{{- $own := index . 1 | default dict -}}
{{- $labels := dict
  "app.kubernetes.io/name" $root.Release.Name
  "app.kubernetes.io/instance" $root.Release.Name
  "app.kubernetes.io/managed-by" $root.Release.Service
  "helm.sh/chart" (printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_")
-}}
{{- $labels = merge (deepCopy $own) (deepCopy ($root.Values.global.labels | default dict)) $labels -}}
{{- toYaml $labels -}}
{{- end -}}

{{- define "common.annotations" -}}
{{- $root := index . 0 -}}
{{- $all := merge (deepCopy (index . 1 | default dict)) (deepCopy ($root.Values.global.annotations | default dict)) -}}
{{- with $all -}}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end -}}
{{- end -}}
