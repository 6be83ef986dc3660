// The flux-build process (shared/tools/flux-build): kustomize-controller's own build code as
// one long-lived child per nsops process, asked one JSON line at a time (core/json-line-child,
// as kustomize/build.ts asks kustomize-server).
import { JsonLineChild, lazyChild } from '../../core/json-line-child.ts'
import { toolPath } from '../../tools/provision.ts'

export interface FluxBuildRequest {
  root: string
  kustomization: Record<string, unknown>
  objects: Record<string, unknown>[]
  strict: boolean
  applied: boolean
  /** objects to substitute only (no build of spec.path) */
  substitute?: Record<string, unknown>[]
}

export interface FluxBuildAnswer {
  id: number
  objects?: unknown[]
  error?: string
}

export type FluxBuildServer = JsonLineChild<FluxBuildRequest, FluxBuildAnswer>

const server = lazyChild(
  async (): Promise<FluxBuildServer> => new JsonLineChild('flux-build', await toolPath('flux-build'), ['serve']),
)

/** This process's flux-build server, started (and provisioned) on first use. */
export const fluxBuildServer = server.get

/** Starts the server now, for a caller with other work to do before its first build. */
export const warmFluxBuild = server.warm

/** Ends this process's flux-build server, if one runs (it also ends when we exit). */
export const stopFluxBuild = server.stop
