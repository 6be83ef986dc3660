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
// With "inputs": true the answer also lists every path the build looked at ("inputs").
// The answer {"id": N, "yaml": "..."} carries exactly what `kustomize build --load-restrictor …
// DIR` of kustomize v5.8.2 prints (same api module, same options as its build command with
// no other flags), or {"id": N, "error": "..."} with the message the CLI prints after
// "Error: ". With "output": "json" the answer is {"id": N, "objects": [...]} instead: the
// objects AsYaml would write, in its order, as the JSON values the YAML stands for (see
// jsonObjects), so the caller parses JSON rather than YAML. Requests are answered in order, one at a time. EOF on stdin ends the process,
// so it never outlives the program that started it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"unicode"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// version is reported by `kustomize-server version`; the cache key is a hash of the sources.
const version = "0.3.0"

type request struct {
	ID             int    `json:"id"`
	Dir            string `json:"dir"`
	LoadRestrictor string `json:"loadRestrictor"`
	// absolute path (symlinks resolved) → the text read in place of that file
	Overrides map[string]string `json:"overrides"`
	// "json": answer the objects as a JSON array rather than the YAML text
	Output string `json:"output"`
	// true: answer the paths the build looked at too (see recordingFS)
	Inputs bool `json:"inputs"`
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
	ID      int             `json:"id"`
	YAML    string          `json:"yaml,omitempty"`
	Objects json.RawMessage `json:"objects,omitempty"`
	Inputs  []string        `json:"inputs,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// recordingFS notes every path a build looks at: each file read, each directory listed or
// tested, each file looked for and not found (it may appear later). A caller that finds all
// of them as they were knows a rebuild would read the same bytes (nsops' build cache).
type recordingFS struct {
	filesys.FileSystem
	seen map[string]struct{}
}

func (r recordingFS) note(p string) { r.seen[filepath.Clean(p)] = struct{}{} }

func (r recordingFS) Open(p string) (filesys.File, error) { r.note(p); return r.FileSystem.Open(p) }
func (r recordingFS) IsDir(p string) bool                 { r.note(p); return r.FileSystem.IsDir(p) }
func (r recordingFS) ReadDir(p string) ([]string, error)  { r.note(p); return r.FileSystem.ReadDir(p) }
func (r recordingFS) Exists(p string) bool                { r.note(p); return r.FileSystem.Exists(p) }
func (r recordingFS) ReadFile(p string) ([]byte, error)   { r.note(p); return r.FileSystem.ReadFile(p) }
func (r recordingFS) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	r.note(p)
	return r.FileSystem.CleanedAbs(p)
}
func (r recordingFS) Glob(pattern string) ([]string, error) {
	r.note(filepath.Dir(pattern))
	found, err := r.FileSystem.Glob(pattern)
	for _, f := range found {
		r.note(f)
	}
	return found, err
}
func (r recordingFS) Walk(p string, fn filepath.WalkFunc) error {
	return r.FileSystem.Walk(p, func(path string, info os.FileInfo, err error) error {
		r.note(path)
		return fn(path, info, err)
	})
}

func (r recordingFS) paths() []string {
	out := make([]string, 0, len(r.seen))
	for p := range r.seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
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
	// kustomize allocates a fresh tree of YAML nodes per object and build, and keeps none of it
	// between requests: collecting at 4x the live heap instead of 2x spends less of a build on
	// the collector (about a tenth of a 400-object build here) for some 25 MB more at its peak.
	debug.SetGCPercent(400)
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
	var rec *recordingFS
	if req.Inputs {
		rec = &recordingFS{FileSystem: fSys, seen: map[string]struct{}{}}
		fSys = rec
	}
	m, err := krusty.MakeKustomizer(opts).Run(fSys, req.Dir)
	if err != nil {
		return answer{ID: req.ID, Error: err.Error()}
	}
	ans := answer{ID: req.ID}
	if rec != nil {
		ans.Inputs = rec.paths()
	}
	if req.Output == "json" {
		objs, err := jsonObjects(m)
		if err != nil {
			return answer{ID: req.ID, Error: err.Error()}
		}
		ans.Objects = objs
		return ans
	}
	yml, err := m.AsYaml()
	if err != nil {
		return answer{ID: req.ID, Error: err.Error()}
	}
	ans.YAML = string(yml)
	return ans
}

// jsonObjects is AsYaml's output as JSON: one array element per resource, in AsYaml's order.
// AsYaml writes each resource as Resource.AsYAML does: MarshalJSON (the kyaml node decoded
// by yaml.v3 and encoded by encoding/json), then sigs.k8s.io/yaml's JSONToYAML, which
// re-reads that JSON with yaml.v2 and writes it with map keys in yaml.v2's order. So the
// values are that very JSON (an int stays an int, "1" a string: yaml.v2 quotes any string
// that would read as another type), and only the key order is redone, as yaml.v2 sorts, so
// a reader sees the keys in the order the YAML lists them.
func jsonObjects(m resmap.ResMap) (json.RawMessage, error) {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, res := range m.Resources() {
		j, err := res.MarshalJSON()
		if err != nil {
			_, yerr := m.AsYaml() // the error the YAML answer gives, word for word
			if yerr == nil {
				yerr = err
			}
			return nil, yerr
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.UseNumber() // numbers go out as the digits MarshalJSON wrote
		var v interface{}
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		if err := writeJSON(&buf, v); err != nil {
			return nil, err
		}
	}
	buf.WriteByte(']')
	return buf.Bytes(), nil
}

// writeJSON encodes v as encoding/json does, with object keys in yaml.v2's order.
func writeJSON(buf *bytes.Buffer, v interface{}) error {
	switch t := v.(type) {
	case map[string]interface{}:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return yamlV2KeyLess(keys[i], keys[j]) })
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			kb, err := json.Marshal(k)
			if err != nil {
				return err
			}
			buf.Write(kb)
			buf.WriteByte(':')
			if err := writeJSON(buf, t[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []interface{}:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	default: // string, json.Number, bool, nil
		b, err := json.Marshal(t)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

// yamlV2KeyLess is how yaml.v2 (go.yaml.in/yaml/v2 v2.4.4, sorter.go keyList.Less) orders
// string map keys when it writes a map: letters after other characters, runs of digits by
// their number. Keys from JSON are always strings, so only its string branch applies.
func yamlV2KeyLess(a, b string) bool {
	ar, br := []rune(a), []rune(b)
	for i := 0; i < len(ar) && i < len(br); i++ {
		if ar[i] == br[i] {
			continue
		}
		al := unicode.IsLetter(ar[i])
		bl := unicode.IsLetter(br[i])
		if al && bl {
			return ar[i] < br[i]
		}
		if al || bl {
			return bl
		}
		var ai, bi int
		var an, bn int64
		if ar[i] == '0' || br[i] == '0' {
			for j := i - 1; j >= 0 && unicode.IsDigit(ar[j]); j-- {
				if ar[j] != '0' {
					an = 1
					bn = 1
					break
				}
			}
		}
		for ai = i; ai < len(ar) && unicode.IsDigit(ar[ai]); ai++ {
			an = an*10 + int64(ar[ai]-'0')
		}
		for bi = i; bi < len(br) && unicode.IsDigit(br[bi]); bi++ {
			bn = bn*10 + int64(br[bi]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ai != bi {
			return ai < bi
		}
		return ar[i] < br[i]
	}
	return len(ar) < len(br)
}
