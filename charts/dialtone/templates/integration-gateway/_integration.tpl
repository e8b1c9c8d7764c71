{{- define "dialtone.integrationGateway.servicesFile" -}}
{{- $c := .Values.integrationGateway -}}
{{- if $c.existingServicesConfigMap -}}
/etc/dialtone/services/{{ $c.existingServicesConfigMapKey }}
{{- else if $c.services -}}
/etc/dialtone/config/services.yaml
{{- end -}}
{{- end -}}

{{- define "dialtone.integrationGateway.credentialsSecret" -}}
{{- $cred := .Values.integrationGateway.credentials -}}
{{- if $cred.existingSecret -}}
{{- $cred.existingSecret -}}
{{- else if $cred.create -}}
{{- printf "%s-integration-credentials" (include "dialtone.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
