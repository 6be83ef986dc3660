// Helm charts from Jsonnet with Tanka's calling convention (as grafana/jsonnet-libs'
// tanka-util): a chart path is resolved relative to the file that called new(), so
//   local helm = (import 'helm.libsonnet').new(std.thisFile);
//   helm.template('redis', '../charts/redis', { namespace: 'platform', values: {...} })
// runs `helm template redis <that dir>/../charts/redis --namespace platform --include-crds`
// with the values, under tk and under nsops' renderer alike. The result is an object of
// the chart's manifests, keyed like `deployment_redis`.
//
// Namespaced objects the chart's templates leave without metadata.namespace are put in
// conf.namespace, where `helm install --namespace` would put them: `helm template` leaves
// them bare, and tk would then give them the environment's spec.namespace instead (the
// flux2 chart's controllers would land in `platform`, not `flux-system`).
local clusterWide = std.set([
  // tk's list of cluster-scoped kinds (grafana/tanka pkg/process/namespace.go)
  'APIService',
  'CertificateSigningRequest',
  'ClusterRole',
  'ClusterRoleBinding',
  'ComponentStatus',
  'CSIDriver',
  'CSINode',
  'CustomResourceDefinition',
  'MutatingWebhookConfiguration',
  'Namespace',
  'Node',
  'NodeMetrics',
  'PersistentVolume',
  'PodSecurityPolicy',
  'PriorityClass',
  'RuntimeClass',
  'SelfSubjectAccessReview',
  'SelfSubjectRulesReview',
  'StorageClass',
  'SubjectAccessReview',
  'TokenReview',
  'ValidatingWebhookConfiguration',
  'VolumeAttachment',
  'ClusterIssuer',
  'IngressClass',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
]);

// Charts often render a metadata field with nothing under it (`annotations:` whose `with`
// found no values): YAML's null. helm and the API server read it as absent, and so must we.
local field(o, name) = local v = std.get(o, name, null); if v == null then {} else v;

local namespaced(kind, metadata) =
  local override = std.get(field(metadata, 'annotations'), 'tanka.dev/namespaced', null);
  if override != null then override == 'true' else !std.setMember(kind, clusterWide);

local inNamespace(ns, o) =
  if !(std.isObject(o) && std.objectHas(o, 'kind')) then o
  else
    local metadata = field(o, 'metadata');
    if std.isObject(metadata) && namespaced(o.kind, metadata) && std.get(metadata, 'namespace', null) == null
    then o { metadata: metadata { namespace: ns } }
    else o;

{
  new(calledFrom):: {
    template(name, chart, conf={})::
      local rendered = std.native('helmTemplate')(name, chart, conf { calledFrom: calledFrom });
      if std.objectHas(conf, 'namespace')
      then std.mapWithKey(function(_, o) inNamespace(conf.namespace, o), rendered)
      else rendered,
  },
}
