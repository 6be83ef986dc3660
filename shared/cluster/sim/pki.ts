// The sim cluster's PKI, made once with openssl and kept across restarts: a CA, the
// apiserver's serving cert, an admin client cert (system:masters), the service-account
// signing key pair, and the admin's bearer token, which the kubeconfig carries.
import { execFile } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { NsopsError } from '../../core/errors.ts'

const run = promisify(execFile)

export interface Pki {
  dir: string
  caCert: string
  caKey: string
  serverCert: string
  serverKey: string
  adminCert: string
  adminKey: string
  saKey: string
  saPub: string
  /** the admin's bearer token (system:masters), what the sim's kubeconfig authenticates with */
  adminToken: string
  /** the apiserver's --token-auth-file: the one line that names that token's user and group */
  tokenFile: string
}

export function pkiPaths(stateDir: string): Pki {
  const dir = path.join(stateDir, 'pki')
  const p = (f: string) => path.join(dir, f)
  return {
    dir,
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    serverCert: p('apiserver.crt'),
    serverKey: p('apiserver.key'),
    adminCert: p('admin.crt'),
    adminKey: p('admin.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
    adminToken: p('admin.token'),
    tokenFile: p('tokens.csv'),
  }
}

/**
 * The admin's bearer token, made when missing (a sim made before it had one keeps its
 * certificates). Why a token, when the admin has a client certificate: the apiserver checks a
 * client certificate's signature on every request, which was 13-18 % of its CPU through a
 * validate of 400 objects (bench/README.md), while a token from its file is a map lookup. The
 * certificate stays valid for a kubeconfig written before.
 */
async function ensureAdminToken(pki: Pki): Promise<void> {
  if (fs.existsSync(pki.adminToken) && fs.existsSync(pki.tokenFile)) return
  const token = crypto.randomBytes(32).toString('hex')
  // token,user,uid,"groups": the user the admin certificate names, in system:masters
  await fsp.writeFile(pki.tokenFile, `${token},nsops-admin,nsops-admin,"system:masters"\n`, { mode: 0o600 })
  await fsp.writeFile(pki.adminToken, `${token}\n`, { mode: 0o600 })
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    if (e.code === 'ENOENT') {
      throw new NsopsError('openssl is not installed; the sim cluster needs it once to make its certificates.', {
        hint: 'Install it with your package manager (Debian/Ubuntu: apt-get install openssl) and run again.',
      })
    }
    throw new NsopsError(
      `openssl ${args[0]} failed while making the sim cluster's certificates: ${e.stderr ?? e.message}`,
      {
        hint: 'check that `openssl version` works (OpenSSL 1.1 or newer); `just cluster-down --purge` removes half-made certificates.',
      },
    )
  }
}

/** Creates whatever part of the PKI is missing; an existing, complete PKI is left alone. */
export async function ensurePki(stateDir: string): Promise<Pki> {
  const pki = pkiPaths(stateDir)
  const all = [pki.caCert, pki.caKey, pki.serverCert, pki.serverKey, pki.adminCert, pki.adminKey, pki.saKey, pki.saPub]
  if (all.every((f) => fs.existsSync(f))) {
    await ensureAdminToken(pki)
    return pki
  }
  // A half-written PKI (killed run) is not trusted: start over.
  await fsp.rm(pki.dir, { recursive: true, force: true })
  await fsp.mkdir(pki.dir, { recursive: true, mode: 0o700 })
  const d = pki.dir
  // P-256 keys: generated in milliseconds where RSA-2048 takes most of a second each, and
  // accepted everywhere Kubernetes takes a key (serving, client and service-account tokens)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
  await openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-nodes',
      '-days',
      '3650',
      '-subj',
      '/CN=nsops-sim-ca',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    ],
    d,
  )
  await fsp.writeFile(
    path.join(d, 'server.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1',
      '',
    ].join('\n'),
  )
  await fsp.writeFile(
    path.join(d, 'client.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  )
  const issue = async (name: string, subj: string, ext: string) => {
    await openssl(['req', ...ec, '-nodes', '-subj', subj, '-keyout', `${name}.key`, '-out', `${name}.csr`], d)
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '3650',
        '-extfile',
        ext,
        '-out',
        `${name}.crt`,
      ],
      d,
    )
  }
  await Promise.all([
    // one after the other: both write the CA's serial file
    issue('apiserver', '/CN=kube-apiserver', 'server.ext').then(() =>
      issue('admin', '/O=system:masters/CN=nsops-admin', 'client.ext'),
    ),
    (async () => {
      await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], d)
      await openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], d)
    })(),
    ensureAdminToken(pki),
  ])
  return pki
}
