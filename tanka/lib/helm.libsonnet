// Helm charts from Jsonnet with Tanka's calling convention (as grafana/jsonnet-libs'
// tanka-util): a chart path is resolved relative to the file that called new(), so
//   local helm = (import 'helm.libsonnet').new(std.thisFile);
//   helm.template('redis', '../charts/redis', { namespace: 'platform', values: {...} })
// runs `helm template redis <that dir>/../charts/redis --namespace platform --include-crds`
// with the values, under tk and under nsops' renderer alike. The result is an object of
// the chart's manifests, keyed like `deployment_redis`.
{
  new(calledFrom):: {
    template(name, chart, conf={})::
      std.native('helmTemplate')(name, chart, conf { calledFrom: calledFrom }),
  },
}
