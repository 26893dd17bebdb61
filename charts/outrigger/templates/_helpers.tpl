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
app.kubernetes.io/name: {{ include "outrigger.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/* The chart's own labels of every resource: the selector labels and the recommended ones. */}}
{{- define "outrigger.chartLabels" -}}
{{ include "outrigger.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* commonLabels over global.commonLabels, as a dict. */}}
{{- define "outrigger.commonLabels" -}}
{{- toYaml (merge (deepCopy (.Values.commonLabels | default dict)) (deepCopy ((.Values.global | default dict).commonLabels | default dict))) -}}
{{- end -}}

{{/* Labels of every resource: the chart's own, then commonLabels. On a clash the chart's key wins,
so a user label can never change a selector or produce a duplicate key. */}}
{{- define "outrigger.labels" -}}
{{- include "outrigger.labelsWith" (dict "ctx" . "extra" dict) -}}
{{- end -}}

{{/* Labels of resources that take extra labels of their own (a dict in .extra): the chart's, then
those, then commonLabels; the chart's keys win. */}}
{{- define "outrigger.labelsWith" -}}
{{- $ctx := .ctx -}}
{{- toYaml (merge (include "outrigger.chartLabels" $ctx | fromYaml) (deepCopy (.extra | default dict)) (include "outrigger.commonLabels" $ctx | fromYaml)) -}}
{{- end -}}

{{/* Labels of the pods: the selector labels, then podLabels, then commonLabels; the selector's
keys win, so the Deployment always selects its pods. */}}
{{- define "outrigger.podLabels" -}}
{{- toYaml (merge (include "outrigger.selectorLabels" . | fromYaml) (deepCopy (.Values.podLabels | default dict)) (include "outrigger.commonLabels" . | fromYaml)) -}}
{{- end -}}

{{- define "outrigger.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "outrigger.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the metrics Service; a ServiceMonitor without jobLabel names its job after it. */}}
{{- define "outrigger.metricsServiceName" -}}
{{- printf "%s-metrics" (include "outrigger.fullname" . | trunc 55 | trimSuffix "-") -}}
{{- end -}}

{{/* metrics.secure as "true" or "false"; unset (a release upgraded with --reuse-values from a chart
before the value existed) it is "true", the default. */}}
{{- define "outrigger.metricsSecure" -}}
{{- dig "metrics" "secure" true .Values.AsMap -}}
{{- end -}}

{{/* Secret holding the secure metrics endpoint's certificate: the user's, or the one the chart
generates. */}}
{{- define "outrigger.metricsTLSSecretName" -}}
{{- dig "metrics" "tls" "secretName" "" .Values.AsMap | default (printf "%s-metrics-tls" (include "outrigger.fullname" . | trunc 51 | trimSuffix "-")) -}}
{{- end -}}

{{/* PromQL matchers for outrigger's own series (metrics.jobSelector, default: the job the chart's
ServiceMonitor gives them), put into every alert and into the dashboard. */}}
{{- define "outrigger.jobSelector" -}}
{{- .Values.metrics.jobSelector | default (printf "job=%q" (include "outrigger.metricsServiceName" .)) -}}
{{- end -}}

{{/* The matcher the shipped rules and dashboard are written with (rules/outrigger.rules.yaml). */}}
{{- define "outrigger.jobSelectorPlaceholder" -}}
job="outrigger-metrics"
{{- end -}}

{{/* Name of the leader-election Lease (the operator's --leader-election-id). */}}
{{- define "outrigger.leaseName" -}}
{{- printf "%s-leader" (include "outrigger.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image reference: by digest when one is given, else by tag (default: appVersion). */}}
{{- define "outrigger.image" -}}
{{- if not .Values.image.repository -}}
{{- fail "image.repository is required: no outrigger image is published yet. Build it (npm run image, or docker build) and push it to a registry your cluster pulls from, then set image.repository (and image.tag or image.digest)" -}}
{{- end -}}
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
- name: {{ . | quote }}
{{- end -}}
{{- end -}}

{{/* A duration value ("500ms", "15s", "1m", "1.5h") in milliseconds, as a float. */}}
{{- define "outrigger.durationMs" -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 -}}
{{- mulf (float64 (regexFind "^[0-9.]+" .)) (get $units (regexFind "(ms|s|m|h)$" .)) -}}
{{- end -}}

{{/* Refuses values that would render a broken or unsafe release, with the reason, before anything
reaches the cluster (the operator would refuse some of them too, but only by crash-looping). */}}
{{- define "outrigger.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: every replica would write the same Endpoints, EndpointSlices and status (two writers). Enable leader election or set replicaCount to 1." (int .Values.replicaCount)) -}}
{{- end -}}
{{- with .Values.leaderElection -}}
{{- $lease := include "outrigger.durationMs" .leaseDuration | float64 -}}
{{- $renew := include "outrigger.durationMs" .renewDeadline | float64 -}}
{{- $retry := include "outrigger.durationMs" .retryPeriod | float64 -}}
{{- if ge $renew $lease -}}
{{- fail (printf "leaderElection.renewDeadline (%s) must be shorter than leaderElection.leaseDuration (%s): a leader must give up before its lease can expire." .renewDeadline .leaseDuration) -}}
{{- end -}}
{{- if ge $retry $renew -}}
{{- fail (printf "leaderElection.retryPeriod (%s) must be shorter than leaderElection.renewDeadline (%s)." .retryPeriod .renewDeadline) -}}
{{- end -}}
{{- end -}}
{{- if eq (int .Values.metrics.port) (int .Values.healthProbePort) -}}
{{- fail (printf "metrics.port and healthProbePort are both %d: the two listeners need different ports." (int .Values.healthProbePort)) -}}
{{- end -}}
{{- end -}}
