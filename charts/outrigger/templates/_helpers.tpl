{{/* The chart's name, or nameOverride. */}}
{{- define "outrigger.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, at most 63 characters (the usual rule: the release name alone when
it already contains the chart's name). */}}
{{- define "outrigger.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "outrigger.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "outrigger.selectorLabels" -}}
app.kubernetes.io/name: {{ include "outrigger.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every resource: the selector labels, the recommended ones, then commonLabels
(global's first, so the chart's own win). */}}
{{- define "outrigger.labels" -}}
{{ include "outrigger.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with merge (deepCopy (.Values.commonLabels | default dict)) (deepCopy ((.Values.global | default dict).commonLabels | default dict)) }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "outrigger.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "outrigger.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the leader-election Lease (the operator's --leader-election-id). */}}
{{- define "outrigger.leaseName" -}}
{{- printf "%s-leader" (include "outrigger.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image reference: by digest when one is given, else by tag (default: appVersion). */}}
{{- define "outrigger.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets and global.imagePullSecrets ({name: ...} or a bare name), each name once. */}}
{{- define "outrigger.imagePullSecrets" -}}
{{- $names := list -}}
{{- range concat (.Values.imagePullSecrets | default list) ((.Values.global | default dict).imagePullSecrets | default list) -}}
{{- if kindIs "string" . -}}
{{- $names = append $names . -}}
{{- else -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- end -}}
{{- range uniq $names }}
- name: {{ . }}
{{- end -}}
{{- end -}}

{{/* Refuses values that would render a broken or unsafe release. */}}
{{- define "outrigger.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: every replica would write the same Endpoints, EndpointSlices and status (two writers). Enable leader election or set replicaCount to 1." (int .Values.replicaCount)) -}}
{{- end -}}
{{- end -}}
