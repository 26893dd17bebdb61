{{/*
What the operator's RBAC grants, resolved once from values and, on upgrade, from the release's
own ClusterRole (its annotations record what the last install granted). An unset value keeps what
a running release already has, so an upgrade never takes away a permission that running checks
use; a fresh install (or a render with no cluster to ask, such as `helm template`) gets the least.
*/}}

{{- define "outrigger.rbacLive" -}}
{{- $cr := lookup "rbac.authorization.k8s.io/v1" "ClusterRole" "" (include "outrigger.fullname" .) -}}
{{- toJson (default (dict) $cr) -}}
{{- end -}}

{{/* "namespaced" or "cluster": where the chart grants reads of labelled Secrets and ConfigMaps. */}}
{{- define "outrigger.healthCheckSources" -}}
{{- if .Values.rbac.healthCheckSources -}}
{{- .Values.rbac.healthCheckSources -}}
{{- else -}}
{{- $live := include "outrigger.rbacLive" . | fromJson -}}
{{- $recorded := dig "metadata" "annotations" "outrigger.dev/health-check-sources" "" $live -}}
{{- if $recorded -}}
{{- $recorded -}}
{{- else if $live -}}
{{- /* Installed by a chart from before the choice existed: it read Secrets cluster-wide. */ -}}
{{- $legacy := false -}}
{{- range (get $live "rules" | default list) -}}
{{- if has "secrets" (get . "resources" | default list) -}}{{- $legacy = true -}}{{- end -}}
{{- end -}}
{{- ternary "cluster" "namespaced" $legacy -}}
{{- else -}}
namespaced
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "true" or "false": whether ExternalBackend spec.podSelector is served (and pods readable for it). */}}
{{- define "outrigger.podSelector" -}}
{{- if kindIs "bool" .Values.podSelector.enabled -}}
{{- .Values.podSelector.enabled -}}
{{- else -}}
{{- $live := include "outrigger.rbacLive" . | fromJson -}}
{{- $recorded := dig "metadata" "annotations" "outrigger.dev/pod-selector" "" $live -}}
{{- if $recorded -}}
{{- $recorded -}}
{{- else if $live -}}
{{- /* Installed by a chart from before the choice existed: podSelector was always served. */ -}}
true
{{- else -}}
false
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Whether the operator reads pods at all: for podSelector, or for selector mode. */}}
{{- define "outrigger.readsPods" -}}
{{- or (eq (include "outrigger.podSelector" .) "true") (ne .Values.selectorMode "off") -}}
{{- end -}}

{{/*
Namespaced RBAC: with watchNamespaces set (and selector mode not over every namespace), Roles in
the namespaces outrigger works in replace the cluster-wide grants on namespaced resources.
*/}}
{{- define "outrigger.namespacedRBAC" -}}
{{- and (gt (len .Values.watchNamespaces) 0) (ne .Values.selectorMode "all") -}}
{{- end -}}

{{/* Selector mode's namespaces when it names some, as a JSON list. */}}
{{- define "outrigger.selectorNamespaces" -}}
{{- if has .Values.selectorMode (list "off" "all") -}}
[]
{{- else -}}
{{- toJson (splitList "," .Values.selectorMode) -}}
{{- end -}}
{{- end -}}

{{/*
Rules on ExternalBackends and what they publish, in the namespaces they are watched in; with
selector mode there too, its Endpoints `update` and pods. Takes (dict "selector" bool "pods" bool).
*/}}
{{- define "outrigger.backendRules" -}}
# Services: watched, and created, given ports and deleted for ExternalBackends that own them.
# `patch` cannot be narrowed to owned Services: RBAC matches on names, and a Service's name is
# chosen by the tenant (spec.service.name).
- apiGroups: [""]
  resources: [services]
  verbs: [list, watch, create, patch, delete]
# Endpoints: create and server-side apply (ExternalBackend), update (selector mode), delete.
- apiGroups: [""]
  resources: [endpoints]
  verbs: [list, watch, create, patch, delete{{ if .selector }}, update{{ end }}]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [outrigger.dev]
  resources: [externalbackends]
  verbs: [list, watch]
- apiGroups: [outrigger.dev]
  resources: [externalbackends/status]
  verbs: [patch]
# Owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on.
- apiGroups: [outrigger.dev]
  resources: [externalbackends/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- if .pods }}
# Pods, for ExternalBackend podSelector and selector mode.
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{/* Selector mode's rules in a namespace it owns Endpoints in (namespaced RBAC only). */}}
{{- define "outrigger.selectorRules" -}}
- apiGroups: [""]
  resources: [services, pods]
  verbs: [list, watch]
- apiGroups: [""]
  resources: [endpoints]
  verbs: [list, watch, create, update, delete]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
