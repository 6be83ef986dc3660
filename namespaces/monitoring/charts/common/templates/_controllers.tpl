{{/* controllers.<id>: a Deployment whose containers get the ports of the services that select it. */}}
{{- define "common.render.controllers" -}}
{{- range $id, $c := .Values.controllers }}
{{- if ne $c.enabled false }}
{{- $pod := $c.pod | default dict }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "common.name" (list $ $id) }}
  labels:
    {{- include "common.labels" (list $ $c.labels) | nindent 4 }}
  {{- with (include "common.annotations" (list $ $c.annotations)) }}{{ . | nindent 2 }}{{ end }}
spec:
  replicas: {{ $c.replicas | default 1 }}
  {{- /* a ReadWriteOnce volume lets one pod at a time mount it: Recreate unless told otherwise */}}
  strategy:
    type: {{ $c.strategy | default "Recreate" }}
  selector:
    matchLabels:
      {{- include "common.selectorLabels" (list $ $id) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- $podLabels := merge (include "common.selectorLabels" (list $ $id) | fromYaml) (deepCopy ($pod.labels | default dict)) }}
        {{- include "common.labels" (list $ $podLabels) | nindent 8 }}
      {{- with $pod.annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      {{- /* service links would inject <APP>_PORT-style variables apps read as their own settings */}}
      enableServiceLinks: {{ $pod.enableServiceLinks | default false }}
      {{- with $pod.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $pod.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        {{- range $name, $ctr := $c.containers }}
        - name: {{ $name }}
          image: {{ printf "%s:%s" $ctr.image.repository ($ctr.image.tag | toString) }}
          {{- with $ctr.image.pullPolicy }}
          imagePullPolicy: {{ . }}
          {{- end }}
          {{- with $ctr.args }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $ctr.env }}
          env:
            {{- range $k, $v := . }}
            - name: {{ $k }}
              value: {{ $v | toString | quote }}
            {{- end }}
          {{- end }}
          ports:
            {{- range $sid, $s := $.Values.service }}
            {{- if and (ne $s.enabled false) (eq ($s.controller | default $sid) $id) }}
            {{- range $pname, $p := $s.ports }}
            - name: {{ $pname }}
              containerPort: {{ $p.targetPort | default $p.port }}
              protocol: {{ $p.protocol | default "TCP" }}
            {{- end }}
            {{- end }}
            {{- end }}
          {{- with ($ctr.probes | default dict).readiness }}
          readinessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with ($ctr.probes | default dict).liveness }}
          livenessProbe:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $ctr.resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with $ctr.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          {{- with (include "common.volumeMounts" $ | trim) }}
          volumeMounts:
            {{- . | nindent 12 }}
          {{- end }}
        {{- end }}
      {{- with (include "common.volumes" $ | trim) }}
      volumes:
        {{- . | nindent 8 }}
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}
