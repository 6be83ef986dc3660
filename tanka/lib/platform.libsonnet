// Small builders for the objects the environments write by hand.
{
  namespace(name, labels={}):: {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: name, labels: { 'app.kubernetes.io/part-of': 'platform' } + labels },
  },

  // Requests for scheduling; a memory limit only (a CPU limit throttles more than it protects).
  resources(cpu, memory, memoryLimit=memory):: {
    requests: { cpu: cpu, memory: memory },
    limits: { memory: memoryLimit },
  },

  persistence(enabled, size):: { enabled: enabled, size: size },
}
