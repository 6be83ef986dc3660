// shared/git/repo.ts against real repositories: a bare "origin" in a temp dir and one or two clones.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { openRepo, shortSha } from '../../shared/git/repo.ts'
import { NsopsError } from '../../shared/core/errors.ts'
import { git, write } from '../git-fixture.ts'

const NS = 'namespaces/demo'

function isAncestor(bare: string, ancestor: string, of: string): boolean {
  try {
    git(bare, 'merge-base', '--is-ancestor', ancestor, of)
    return true
  } catch {
    return false
  }
}

interface Fixture {
  origin: string
  clone(name: string): string
}

/** A bare origin with one pushed commit holding the namespace and an unrelated file. */
function fixture(tmp: string, name: string): Fixture {
  const base = fs.mkdtempSync(path.join(tmp, `${name}-`))
  const origin = path.join(base, 'origin.git')
  git(base, 'init', '--bare', '-q', origin)
  const clone = (who: string): string => {
    const dir = path.join(base, who)
    git(base, 'clone', '-q', origin, dir)
    git(dir, 'config', 'user.name', `nsops test ${who}`)
    git(dir, 'config', 'user.email', `${who}@nsops.test`)
    git(dir, 'config', 'commit.gpgsign', 'false')
    return dir
  }
  const seed = clone('seed')
  write(seed, `${NS}/deploy.yaml`, 'replicas: 1\n')
  write(seed, `${NS}/old.yaml`, 'old: true\n')
  write(seed, 'README.md', 'hello\n')
  write(seed, 'notes.md', 'notes\n')
  git(seed, 'add', '-A')
  git(seed, 'commit', '-q', '-m', 'seed')
  git(seed, 'push', '-q', '-u', 'origin', 'main')
  return { origin, clone }
}

describe('git', () => {
  let tmp: string
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nsops-git-'))
  })
  after(() => {
    fs.rmSync(tmp, { recursive: true, force: true })
  })

  it('reports branch, upstream, ahead/behind, HEAD and staged, unstaged and untracked paths', async () => {
    const { clone } = fixture(tmp, 'state')
    const a = clone('a')
    write(a, 'README.md', 'changed\n')
    write(a, `${NS}/deploy.yaml`, 'replicas: 2\n')
    git(a, 'add', `${NS}/deploy.yaml`)
    write(a, 'notes/new.txt', 'new\n')
    const s = await (await openRepo(path.join(a, 'namespaces'))).repoState()
    assert.equal(s.root, fs.realpathSync(a))
    assert.equal(s.branch, 'main')
    assert.equal(s.upstream, 'origin/main')
    assert.deepEqual([s.ahead, s.behind], [0, 0])
    assert.equal(s.head, git(a, 'rev-parse', 'HEAD'))
    assert.deepEqual(s.staged, [`${NS}/deploy.yaml`])
    assert.deepEqual(s.unstaged, ['README.md'])
    assert.deepEqual(s.untracked, ['notes/new.txt'])
  })

  it('lists which of the given paths have changes', async () => {
    const { clone } = fixture(tmp, 'changed')
    const a = clone('a')
    const repo = await openRepo(a)
    assert.deepEqual(await repo.changedPaths([NS, 'README.md']), [])
    fs.rmSync(path.join(a, NS, 'old.yaml'))
    write(a, 'other/new.txt', 'x\n')
    assert.deepEqual(await repo.changedPaths([`${NS}/`, 'README.md', 'other', 'missing']), [NS, 'other'])
  })

  it('commits only the given paths, including new and deleted files under them', async () => {
    const { clone } = fixture(tmp, 'commit')
    const a = clone('a')
    write(a, `${NS}/deploy.yaml`, 'replicas: 3\n')
    write(a, `${NS}/sub/new.yaml`, 'new: true\n')
    fs.rmSync(path.join(a, NS, 'old.yaml'))
    write(a, 'README.md', 'unrelated edit\n')
    write(a, 'scratch.txt', 'untracked\n')
    const repo = await openRepo(a)
    const before = git(a, 'rev-parse', 'HEAD')

    const result = await repo.commitPaths([NS], 'deploy demo')

    assert.equal(result.committed, true)
    assert.ok(result.committed)
    assert.equal(result.sha, git(a, 'rev-parse', 'HEAD'))
    assert.equal(git(a, 'rev-parse', 'HEAD^'), before)
    assert.equal(git(a, 'log', '-1', '--format=%s'), 'deploy demo')
    const files = git(a, 'show', '--name-status', '--format=', 'HEAD').split('\n').sort()
    assert.deepEqual(files, [`D\t${NS}/old.yaml`, `M\t${NS}/deploy.yaml`, `A\t${NS}/sub/new.yaml`].sort())
    assert.deepEqual([...result.files].sort(), [`${NS}/deploy.yaml`, `${NS}/old.yaml`, `${NS}/sub/new.yaml`])
    const s = await repo.repoState()
    assert.deepEqual(s.staged, [])
    assert.deepEqual(s.unstaged, ['README.md'])
    assert.deepEqual(s.untracked, ['scratch.txt'])
  })

  it('refuses a commit when unrelated changes are staged, names them and commits nothing', async () => {
    const { clone } = fixture(tmp, 'refuse')
    const a = clone('a')
    write(a, `${NS}/deploy.yaml`, 'replicas: 4\n')
    write(a, 'README.md', 'staged elsewhere\n')
    write(a, 'docs/guide.md', 'new and staged\n')
    git(a, 'add', 'README.md', 'docs/guide.md')
    const before = git(a, 'rev-parse', 'HEAD')
    const repo = await openRepo(a)

    await assert.rejects(repo.commitPaths([NS], 'deploy demo'), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.equal(err.exitCode, 1)
      assert.match(err.message, /README\.md/)
      assert.match(err.message, /docs\/guide\.md/)
      assert.match(err.hint ?? '', /git restore --staged/)
      return true
    })
    assert.equal(git(a, 'rev-parse', 'HEAD'), before)
    // the namespace's own change was not staged either
    assert.deepEqual((await repo.repoState()).staged.sort(), ['README.md', 'docs/guide.md'])
  })

  it('reports nothing to commit when the given paths have no changes', async () => {
    const { clone } = fixture(tmp, 'nothing')
    const a = clone('a')
    write(a, 'README.md', 'unrelated, not staged\n')
    const before = git(a, 'rev-parse', 'HEAD')
    const repo = await openRepo(a)
    assert.deepEqual(await repo.commitPaths([NS], 'deploy demo'), { committed: false })
    // touched and put back: status may list it, but there is nothing to commit
    write(a, `${NS}/deploy.yaml`, 'replicas: 9\n')
    write(a, `${NS}/deploy.yaml`, 'replicas: 1\n')
    assert.deepEqual(await repo.commitPaths([NS], 'deploy demo'), { committed: false })
    assert.equal(git(a, 'rev-parse', 'HEAD'), before)
  })

  it('pushes to the upstream and returns matching local and remote SHAs', async () => {
    const { origin, clone } = fixture(tmp, 'push')
    const a = clone('a')
    const earlier = git(origin, 'rev-parse', 'main')
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 5\n')
    const commit = await repo.commitPaths([NS], 'deploy demo')
    assert.ok(commit.committed)

    const pushed = await repo.push()

    assert.deepEqual(pushed, { localSha: commit.sha, remoteSha: commit.sha, rebased: false, overtaken: false })
    assert.equal(git(origin, 'rev-parse', 'main'), commit.sha)
    assert.equal(await repo.remoteSha('main'), commit.sha)
    assert.equal(await repo.remoteSha('no-such-branch'), null)
    assert.equal(await repo.headSha(), commit.sha)
    assert.ok(isAncestor(origin, earlier, 'main'))
    const s = await repo.repoState()
    assert.deepEqual([s.ahead, s.behind], [0, 0])
  })

  it('rebases and retries once when another clone pushed first, and both commits reach the remote', async () => {
    const { origin, clone } = fixture(tmp, 'race')
    const a = clone('a')
    const b = clone('b')
    write(b, 'README.md', 'b was here\n')
    git(b, 'commit', '-q', '-am', 'b: readme')
    git(b, 'push', '-q')
    const theirs = git(b, 'rev-parse', 'HEAD')

    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 6\n')
    const commit = await repo.commitPaths([NS], 'deploy demo')
    assert.ok(commit.committed)
    // an unrelated unstaged edit survives the rebase (autostash)
    write(a, 'notes.md', 'local notes\n')

    const pushed = await repo.push()

    assert.equal(pushed.rebased, true)
    assert.equal(pushed.localSha, pushed.remoteSha)
    assert.equal(git(origin, 'rev-parse', 'main'), pushed.localSha)
    assert.equal(git(origin, 'rev-parse', 'main^'), theirs)
    assert.deepEqual(git(origin, 'log', '--format=%s', 'main').split('\n'), ['deploy demo', 'b: readme', 'seed'])
    assert.ok(isAncestor(origin, theirs, 'main'), "the other clone's commit is still on the remote (no force push)")
    assert.equal(fs.readFileSync(path.join(a, 'notes.md'), 'utf8'), 'local notes\n')
    assert.equal(git(a, 'status', '--porcelain'), 'M notes.md')
  })

  it('aborts the rebase on a conflicting race, keeps the local commit and says how to continue', async () => {
    const { origin, clone } = fixture(tmp, 'conflict')
    const a = clone('a')
    const b = clone('b')
    write(b, `${NS}/deploy.yaml`, 'replicas: 7\n')
    git(b, 'commit', '-q', '-am', 'b: seven replicas')
    git(b, 'push', '-q')
    const theirs = git(b, 'rev-parse', 'HEAD')

    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 8\n')
    const commit = await repo.commitPaths([NS], 'deploy demo')
    assert.ok(commit.committed)

    await assert.rejects(repo.push(), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, /rejected/)
      assert.match(err.message, new RegExp(`${NS}/deploy\\.yaml`))
      assert.match(err.message, new RegExp(shortSha(commit.sha)))
      assert.match(err.message, /kept locally/)
      assert.match(err.hint ?? '', /git pull --rebase origin main/)
      assert.match(err.hint ?? '', /git rebase --continue/)
      return true
    })
    assert.equal(git(a, 'rev-parse', 'HEAD'), commit.sha, 'the local commit is kept as it was')
    assert.equal(git(a, 'symbolic-ref', '--short', 'HEAD'), 'main', 'no rebase is left in progress')
    assert.equal(fs.existsSync(path.join(a, '.git', 'rebase-merge')), false)
    assert.equal(git(a, 'status', '--porcelain'), '')
    assert.equal(git(origin, 'rev-parse', 'main'), theirs, 'the remote was not overwritten')
  })

  it('never force-pushes: after local history diverged, the remote keeps its earlier commit', async () => {
    const { origin, clone } = fixture(tmp, 'noforce')
    const a = clone('a')
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 2\n')
    const first = await repo.commitPaths([NS], 'deploy one')
    assert.ok(first.committed)
    await repo.push()
    // rewrite local history behind the remote's back: a force push would drop "deploy one"
    git(a, 'reset', '-q', '--hard', 'HEAD^')
    write(a, `${NS}/extra.yaml`, 'extra: true\n')
    const second = await repo.commitPaths([NS], 'deploy two')
    assert.ok(second.committed)

    const pushed = await repo.push()

    assert.equal(pushed.rebased, true)
    assert.ok(isAncestor(origin, first.sha, 'main'), 'the earlier remote commit is still an ancestor')
    assert.deepEqual(git(origin, 'log', '--format=%s', 'main').split('\n'), ['deploy two', 'deploy one', 'seed'])
  })

  it('reverts a commit as a new commit whose tree equals the parent of the reverted one', async () => {
    const { clone } = fixture(tmp, 'revert')
    const a = clone('a')
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 10\n')
    fs.rmSync(path.join(a, NS, 'old.yaml'))
    const deploy = await repo.commitPaths([NS], 'deploy demo')
    assert.ok(deploy.committed)
    write(a, 'README.md', 'unstaged, untouched by the revert\n')

    const reverted = await repo.revertCommit(deploy.sha)

    assert.deepEqual(reverted, { sha: git(a, 'rev-parse', 'HEAD'), reverted: deploy.sha })
    assert.equal(git(a, 'rev-parse', 'HEAD^'), deploy.sha, 'history is extended, not rewritten')
    assert.equal(git(a, 'rev-parse', 'HEAD^{tree}'), git(a, 'rev-parse', `${deploy.sha}^^{tree}`))
    assert.equal(git(a, 'log', '-1', '--format=%s'), 'Revert "deploy demo"')
    assert.match(git(a, 'log', '-1', '--format=%b'), new RegExp(`This reverts commit ${deploy.sha}\\.`))
    assert.equal(fs.readFileSync(path.join(a, 'README.md'), 'utf8'), 'unstaged, untouched by the revert\n')

    const again = await repo.revertCommit(reverted.sha, 'nsops: roll back the rollback')
    assert.equal(git(a, 'log', '-1', '--format=%s'), 'nsops: roll back the rollback')
    assert.equal(git(a, 'rev-parse', `${again.sha}^{tree}`), git(a, 'rev-parse', `${deploy.sha}^{tree}`))
  })

  it('refuses to revert while changes are staged, naming them', async () => {
    const { clone } = fixture(tmp, 'revert-staged')
    const a = clone('a')
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 11\n')
    const deploy = await repo.commitPaths([NS], 'deploy demo')
    assert.ok(deploy.committed)
    write(a, 'README.md', 'staged\n')
    git(a, 'add', 'README.md')

    await assert.rejects(repo.revertCommit(deploy.sha), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.equal(err.exitCode, 1)
      assert.match(err.message, /staged \(README\.md\)/)
      return true
    })
    assert.equal(git(a, 'rev-parse', 'HEAD'), deploy.sha)
    assert.equal(git(a, 'status', '--porcelain'), 'M  README.md')
  })

  it('refuses to revert a commit whose changes conflict with later commits and leaves the tree clean', async () => {
    const { clone } = fixture(tmp, 'revert-conflict')
    const a = clone('a')
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 12\n')
    const deploy = await repo.commitPaths([NS], 'deploy twelve')
    assert.ok(deploy.committed)
    write(a, `${NS}/deploy.yaml`, 'replicas: 13\n')
    const later = await repo.commitPaths([NS], 'deploy thirteen')
    assert.ok(later.committed)

    await assert.rejects(repo.revertCommit(deploy.sha), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, /conflicts with later commits in namespaces\/demo\/deploy\.yaml/)
      return true
    })
    assert.equal(git(a, 'rev-parse', 'HEAD'), later.sha)
    assert.equal(git(a, 'status', '--porcelain'), '')
  })

  it('refuses to revert over unstaged edits to the files it touches, and to revert what is already undone', async () => {
    const { clone } = fixture(tmp, 'revert-dirty')
    const a = clone('a')
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 16\n')
    const deploy = await repo.commitPaths([NS], 'deploy demo')
    assert.ok(deploy.committed)

    write(a, `${NS}/deploy.yaml`, 'replicas: 17, unsaved work\n')
    await assert.rejects(repo.revertCommit(deploy.sha), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, /would be overwritten/)
      assert.match(err.message, /namespaces\/demo\/deploy\.yaml/)
      return true
    })
    assert.equal(git(a, 'rev-parse', 'HEAD'), deploy.sha)
    assert.equal(
      fs.readFileSync(path.join(a, NS, 'deploy.yaml'), 'utf8'),
      'replicas: 17, unsaved work\n',
      'the edit is kept',
    )

    git(a, 'checkout', '--', NS)
    const undone = await repo.revertCommit(deploy.sha)
    await assert.rejects(repo.revertCommit(deploy.sha), /changes nothing: its changes are already undone/)
    assert.equal(git(a, 'rev-parse', 'HEAD'), undone.sha)
    assert.equal(git(a, 'status', '--porcelain'), '')
    assert.equal(fs.existsSync(path.join(a, '.git', 'REVERT_HEAD')), false, 'no revert is left in progress')
  })

  it('refuses to push from a detached HEAD with a hint to check out a branch', async () => {
    const { clone } = fixture(tmp, 'detached')
    const a = clone('a')
    git(a, 'checkout', '-q', '--detach', 'HEAD')
    const repo = await openRepo(a)
    assert.equal((await repo.repoState()).branch, null)
    for (const attempt of [() => repo.requireUpstream(), () => repo.push()]) {
      await assert.rejects(attempt, (err: unknown) => {
        assert.ok(err instanceof NsopsError)
        assert.equal(err.exitCode, 1)
        assert.match(err.message, /detached/)
        assert.match(err.hint ?? '', /git switch main/)
        return true
      })
    }
  })

  it('refuses a branch without an upstream with a hint to push -u', async () => {
    const { origin, clone } = fixture(tmp, 'noupstream')
    const a = clone('a')
    git(a, 'switch', '-q', '-c', 'feature')
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 14\n')
    assert.ok((await repo.commitPaths([NS], 'deploy demo')).committed)
    await assert.rejects(repo.push(), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, /branch "feature" .* has no upstream/)
      assert.match(err.hint ?? '', /git push -u origin feature/)
      return true
    })
    assert.throws(() => git(origin, 'rev-parse', '--verify', 'refs/heads/feature'))
  })

  it("turns a missing remote into an NsopsError with git's message and a hint", async () => {
    const { clone } = fixture(tmp, 'noremote')
    const a = clone('a')
    git(a, 'remote', 'set-url', 'origin', path.join(tmp, 'gone.git'))
    const repo = await openRepo(a)
    write(a, `${NS}/deploy.yaml`, 'replicas: 15\n')
    assert.ok((await repo.commitPaths([NS], 'deploy demo')).committed)
    for (const attempt of [() => repo.push(), () => repo.remoteSha()]) {
      await assert.rejects(attempt, (err: unknown) => {
        assert.ok(err instanceof NsopsError)
        assert.match(err.message, /does not appear to be a git repository/)
        assert.match(err.hint ?? '', /git remote -v/)
        return true
      })
    }
  })

  it('refuses a directory that is not a git repository and paths outside the repository', async () => {
    const plain = fs.mkdtempSync(path.join(tmp, 'plain-'))
    await assert.rejects(openRepo(plain), (err: unknown) => {
      assert.ok(err instanceof NsopsError)
      assert.match(err.message, /not a git repository/)
      return true
    })
    const { clone } = fixture(tmp, 'outside')
    const repo = await openRepo(clone('a'))
    await assert.rejects(repo.commitPaths(['../elsewhere'], 'x'), /outside the repository/)
  })
})
