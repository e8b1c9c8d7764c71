{{/*
The objects each of the four services has: Deployment, Service, HPA, PDB, ServiceMonitor.
Each component's folder calls these with its own additions, passed as YAML strings:
  checksum      sha256 of everything that should roll the pods when it changes
  ports         extra container ports
  env           extra environment variables
  envFrom       envFrom sources
  volumes       extra pod volumes
  volumeMounts  extra container mounts
  pod           extra pod spec fields (hostNetwork, dnsPolicy, ...)
  strategy      the Deployment strategy when the component's `strategy` value is empty
  resources     container resources replacing the component's `resources` value
  tolerations   tolerations added to the component's `tolerations` value
  affinity      affinity that replaces the component's `affinity` value when that is empty
*/}}

{{- define "dialtone.component.deployment" -}}
{{- $root := .root -}}
{{- $c := index $root.Values .key -}}
{{- /* With mTLS the gRPC port asks for a client certificate, which the kubelet cannot show: probes
go to the plaintext health-only port (tls.health_port). */ -}}
{{- $probePort := ternary $root.Values.tls.healthPort $c.ports.grpc $root.Values.tls.enabled -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "dialtone.component.fullname" . }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
spec:
  {{- if not $c.autoscaling.enabled }}
  replicas: {{ $c.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- if $c.strategy }}
  strategy:
    {{- toYaml $c.strategy | nindent 4 }}
  {{- else if .strategy }}
  strategy:
    {{- .strategy | nindent 4 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "dialtone.component.selectorLabels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "dialtone.component.labels" . | nindent 8 }}
        {{- with $c.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ .checksum }}
        {{- with $c.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "dialtone.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountServiceAccountToken }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      # The preStop pause, then the service's own drain (shutdown_grace_s), then a margin.
      terminationGracePeriodSeconds: {{ add $c.preStopSleepSeconds $c.shutdownGraceSeconds 5 }}
      {{- with $c.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with .pod }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: {{ .name }}
          image: {{ include "dialtone.component.image" . }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          # The image's ENTRYPOINT is `dialtone {{ .name }}`.
          args: ["--config", "/etc/dialtone/config/config.yaml"]
          ports:
            - name: grpc
              containerPort: {{ $c.ports.grpc }}
              protocol: TCP
            - name: metrics
              containerPort: {{ $c.ports.metrics }}
              protocol: TCP
            {{- if $root.Values.tls.enabled }}
            - name: health
              containerPort: {{ $root.Values.tls.healthPort }}
              protocol: TCP
            {{- end }}
            {{- with .ports }}
            {{- . | nindent 12 }}
            {{- end }}
          {{- if or .env $c.extraEnv }}
          env:
            {{- with .env }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $c.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- end }}
          {{- with .envFrom }}
          envFrom:
            {{- . | nindent 12 }}
          {{- end }}
          # grpc.health.v1: SERVING once started; NOT_SERVING from SIGTERM on, which takes the pod
          # out of the Service while it drains (the kubelet stops liveness probes on deletion).
          startupProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: 5
            failureThreshold: 60
          readinessProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          livenessProbe:
            grpc:
              port: {{ $probePort }}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          lifecycle:
            preStop:
              exec:
                command: ["sleep", "{{ $c.preStopSleepSeconds }}"]
          resources:
            {{- .resources | default (toYaml $c.resources) | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /etc/dialtone/config
              readOnly: true
            - name: tmp
              mountPath: /tmp
            {{- include "dialtone.token.volumeMount" (dict "root" $root "which" "metrics") | nindent 12 }}
            {{- if $root.Values.tls.enabled }}
            - name: tls
              mountPath: {{ include "dialtone.tlsDir" . }}
              readOnly: true
            {{- end }}
            {{- with .volumeMounts }}
            {{- . | nindent 12 }}
            {{- end }}
            {{- with $c.extraVolumeMounts }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
      volumes:
        - name: config
          configMap:
            name: {{ include "dialtone.component.fullname" . }}
        - name: tmp
          emptyDir: {}
        {{- include "dialtone.token.volume" (dict "root" $root "which" "metrics") | nindent 8 }}
        {{- if $root.Values.tls.enabled }}
        # Mounted whole (no subPath), so a renewed certificate reaches the files; the service reloads them.
        - name: tls
          secret:
            secretName: {{ include "dialtone.component.tlsSecret" . }}
            defaultMode: 0440
        {{- end }}
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $c.extraVolumes }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $c.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if or $c.tolerations .tolerations }}
      tolerations:
        {{- with $c.tolerations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with .tolerations }}
        {{- . | nindent 8 }}
        {{- end }}
      {{- end }}
      {{- if $c.affinity }}
      affinity:
        {{- toYaml $c.affinity | nindent 8 }}
      {{- else if .affinity }}
      affinity:
        {{- .affinity | nindent 8 }}
      {{- end }}
      {{- with $c.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* The in-cluster Service: gRPC, metrics, plus `ports` (YAML string). */}}
{{- define "dialtone.component.service" -}}
{{- $c := index .root.Values .key -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "dialtone.component.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
  {{- with $c.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $c.service.type }}
  selector:
    {{- include "dialtone.component.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $c.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    - name: metrics
      port: {{ $c.ports.metrics }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
    {{- with .ports }}
    {{- . | nindent 4 }}
    {{- end }}
---
# Headless: one DNS record per ready pod, for clients that balance per call (dialtone.component.grpcAddress).
apiVersion: v1
kind: Service
metadata:
  name: {{ include "dialtone.component.fullname" . }}-headless
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "dialtone.component.selectorLabels" . | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $c.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
{{- end -}}

{{- define "dialtone.component.hpa" -}}
{{- $c := index .root.Values .key -}}
{{- if $c.autoscaling.enabled }}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) }}
{{- fail (printf "%s.autoscaling.minReplicas (%v) is above maxReplicas (%v)" .key $c.autoscaling.minReplicas $c.autoscaling.maxReplicas) }}
{{- end }}
{{- if not (or $c.autoscaling.targetCPUUtilizationPercentage $c.autoscaling.targetMemoryUtilizationPercentage $c.autoscaling.podsMetrics) }}
{{- fail (printf "%s.autoscaling needs a target: targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or podsMetrics" .key) }}
{{- end }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "dialtone.component.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "dialtone.component.fullname" . }}
  minReplicas: {{ $c.autoscaling.minReplicas }}
  maxReplicas: {{ $c.autoscaling.maxReplicas }}
  metrics:
    {{- with $c.autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- with $c.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ . }}
    {{- end }}
    {{- range $c.autoscaling.podsMetrics }}
    # A per-pod custom metric, served by a metrics adapter (e.g. prometheus-adapter).
    - type: Pods
      pods:
        metric:
          name: {{ .name }}
        target:
          type: AverageValue
          averageValue: {{ .targetAverageValue | quote }}
    {{- end }}
  {{- with $c.autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "dialtone.component.pdb" -}}
{{- $c := index .root.Values .key -}}
{{- $pdb := $c.podDisruptionBudget -}}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "dialtone.component.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
spec:
  selector:
    matchLabels:
      {{- include "dialtone.component.selectorLabels" . | nindent 6 }}
  {{- /* minAvailable, when set, replaces the default maxUnavailable. */}}
  {{- if not (kindIs "invalid" $pdb.minAvailable) }}
  minAvailable: {{ $pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $pdb.maxUnavailable | default 1 }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "dialtone.component.serviceMonitor" -}}
{{- $sm := .root.Values.monitoring.serviceMonitor -}}
{{- if $sm.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "dialtone.component.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
    {{- with $sm.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "dialtone.component.selectorLabels" . | nindent 6 }}
  namespaceSelector:
    matchNames:
      - {{ .root.Release.Namespace }}
  endpoints:
    - port: metrics
      path: /metrics
      interval: {{ $sm.interval }}
      scrapeTimeout: {{ $sm.scrapeTimeout }}
      # /metrics listens beyond loopback, so it wants the metrics token.
      authorization:
        type: Bearer
        credentials:
          name: {{ include "dialtone.token.secretName" (dict "root" .root "which" "metrics") }}
          key: {{ include "dialtone.token.secretKey" (dict "root" .root "which" "metrics") }}
{{- end }}
{{- end -}}
