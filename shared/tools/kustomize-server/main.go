// kustomize-server: `kustomize build` as a long-lived process, so a dev loop that builds
// its overlay on every save pays kustomize's start-up (binary load, the builtin plugins,
// the OpenAPI schema it parses on first use) once instead of per build.
//
//	kustomize-server serve     one request per line on stdin, one answer per line on stdout
//	kustomize-server version
//
// A request is {"id": N, "dir": "/abs/overlay", "loadRestrictor": "rootOnly"|"none",
// "overrides": {"/abs/path/kustomization.yaml": "text"}}; overrides stand in for those files'
// contents (the dev loop's partial builds: an ancestor kustomization with fewer resources).
// The answer {"id": N, "yaml": "..."} carries exactly what `kustomize build --load-restrictor …
// DIR` of kustomize v5.8.2 prints (same api module, same options as its build command with
// no other flags), or {"id": N, "error": "..."} with the message the CLI prints after
// "Error: ". Requests are answered in order, one at a time. EOF on stdin ends the process,
// so it never outlives the program that started it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// version is reported by `kustomize-server version`; the cache key is a hash of the sources.
const version = "0.1.0"

type request struct {
	ID             int    `json:"id"`
	Dir            string `json:"dir"`
	LoadRestrictor string `json:"loadRestrictor"`
	// absolute path (symlinks resolved) → the text read in place of that file
	Overrides map[string]string `json:"overrides"`
}

// overriddenFS reads some files from memory and everything else from disk.
type overriddenFS struct {
	filesys.FileSystem
	files map[string]string
}

func (o overriddenFS) ReadFile(p string) ([]byte, error) {
	if text, ok := o.files[filepath.Clean(p)]; ok {
		return []byte(text), nil
	}
	return o.FileSystem.ReadFile(p)
}

type answer struct {
	ID    int    `json:"id"`
	YAML  string `json:"yaml,omitempty"`
	Error string `json:"error,omitempty"`
}

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Printf("kustomize-server %s (kustomize api v0.21.2, as kustomize v5.8.2)\n", version)
		return
	}
	if len(os.Args) != 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: kustomize-server serve|version")
		os.Exit(2)
	}
	fSys := filesys.MakeFsOnDisk()
	in := bufio.NewReaderSize(os.Stdin, 1<<16)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := json.NewEncoder(out)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			var ans answer
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				ans.Error = "kustomize-server: unreadable request: " + jerr.Error()
			} else {
				ans = build(fSys, req)
			}
			if werr := enc.Encode(ans); werr != nil {
				os.Exit(1)
			}
			if ferr := out.Flush(); ferr != nil {
				os.Exit(1)
			}
		}
		if err != nil {
			return // EOF: the program that started us is gone
		}
	}
}

// build does what kustomize v5.8.2's `build` command does with only --load-restrictor set
// (commands/build/build.go: HonorKustomizeFlags over MakeDefaultOptions, then AsYaml).
func build(fSys filesys.FileSystem, req request) answer {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	if req.LoadRestrictor == "none" {
		opts.LoadRestrictions = types.LoadRestrictionsNone
	}
	opts.PluginConfig.HelmConfig.Enabled = false
	opts.PluginConfig.HelmConfig.Command = "helm"
	opts.AddManagedbyLabel = false
	if len(req.Overrides) > 0 {
		files := make(map[string]string, len(req.Overrides))
		for p, text := range req.Overrides {
			files[filepath.Clean(p)] = text
		}
		fSys = overriddenFS{FileSystem: fSys, files: files}
	}
	m, err := krusty.MakeKustomizer(opts).Run(fSys, req.Dir)
	if err != nil {
		return answer{ID: req.ID, Error: err.Error()}
	}
	yml, err := m.AsYaml()
	if err != nil {
		return answer{ID: req.ID, Error: err.Error()}
	}
	return answer{ID: req.ID, YAML: string(yml)}
}
