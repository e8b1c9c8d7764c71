{{/* The ConfigMap of one dialog file: <fullname>-dialog-<file name, DNS-safe>. */}}
{{- define "dialtone.dialogs.configMapName" -}}
{{- $base := .file | lower | replace "_" "-" | replace "." "-" | trimSuffix "-yaml" | trimSuffix "-yml" -}}
{{- printf "%s-dialog-%s" (include "dialtone.fullname" .root) $base | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dialtone.dialogs.any" -}}
{{- if or .Values.dialogs.files .Values.dialogs.existingConfigMaps }}true{{ end -}}
{{- end -}}
