{{- define "streamproc.name" -}}{{ .Release.Name }}-streamproc{{- end -}}
{{- define "streamproc.labels" -}}
app.kubernetes.io/name: streamproc
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
