// The arr-stack: indexers feed the automation apps, which send releases to the download
// client and file the results into the library the media servers stream.
import { defineNamespace } from '../../shared/config/namespace-config.ts'

export default defineNamespace({
  name: 'arr-stack',
  description: 'Media automation: indexers, TV/movie/music automation, downloads, media servers and requests.',
  namespaces: { dev: 'arr-stack-dev', prod: 'arr-stack' },
  flux: { kustomization: 'arr-stack', namespace: 'flux-system' },
  domains: { dev: 'arr.localhost', prod: 'home.example' },
  groups: [
    {
      title: 'Indexers',
      apps: [{ name: 'prowlarr', port: 9696, description: 'indexer manager; syncs indexers to the automation apps' }],
    },
    {
      title: 'Automation',
      apps: [
        { name: 'sonarr', port: 8989, description: 'TV series' },
        { name: 'radarr', port: 7878, description: 'movies' },
        { name: 'lidarr', port: 8686, description: 'music' },
        { name: 'bazarr', port: 6767, description: 'subtitles for sonarr and radarr' },
      ],
    },
    {
      title: 'Downloads',
      apps: [{ name: 'qbittorrent', port: 8080, description: 'BitTorrent client (torrent port 6881)' }],
    },
    {
      title: 'Media servers',
      apps: [{ name: 'jellyfin', port: 8096, description: 'streams the library' }],
    },
    {
      title: 'Requests',
      apps: [{ name: 'jellyseerr', port: 5055, description: 'requests from Jellyfin users' }],
    },
  ],
  portForwards: [
    { app: 'prowlarr', local: 9696, remote: 9696 },
    { app: 'sonarr', local: 8989, remote: 8989 },
    { app: 'radarr', local: 7878, remote: 7878 },
    { app: 'lidarr', local: 8686, remote: 8686 },
    { app: 'bazarr', local: 6767, remote: 6767 },
    { app: 'qbittorrent', local: 8080, remote: 8080 },
    { app: 'jellyfin', local: 8096, remote: 8096 },
    { app: 'jellyseerr', local: 5055, remote: 5055 },
  ],
  // Typed zx tasks: `just task arr-stack NAME`, or by themselves in the dev loop (`on`).
  tasks: {
    'sonarr-ready': {
      description: 'wait until sonarr has rolled out (after every apply of the dev loop)',
      on: 'apply',
      run: async ({ $, namespace }) => {
        await $`kubectl -n ${namespace} rollout status deploy/sonarr --timeout=90s`
      },
    },
    'restart-downloads': {
      description: 'restart qbittorrent and wait until it is back',
      after: ['sonarr-ready'],
      run: async ({ $, namespace }) => {
        await $`kubectl -n ${namespace} rollout restart deploy/qbittorrent`
        await $`kubectl -n ${namespace} rollout status deploy/qbittorrent --timeout=90s`
      },
    },
  },
  quickCommands: [
    { title: 'Follow sonarr logs', command: 'kubectl -n {namespace} logs deploy/sonarr -f' },
    { title: 'Shared volumes', command: 'kubectl -n {namespace} get pvc -l nsops.dev/storage=shared' },
    {
      title: 'Restart qbittorrent',
      command: 'kubectl -n {namespace} delete pod -l app.kubernetes.io/name=qbittorrent',
    },
  ],
})
