// flux-build: what kustomize-controller v1.9.5 builds for a Flux Kustomization, as a
// long-lived process. It runs the controller's own code (fluxcd/pkg/kustomize v1.35.6 on
// kustomize api v0.21.1, the versions kustomize-controller v1.9.5 pins), in the controller's
// order (internal/controller/kustomization_controller.go: generate → build → post-build
// substitution → ReadObjects → normalize → commonMetadata → owner labels), so what nsops
// validates, diffs and applies is what Flux applies, by construction rather than by imitation.
//
//	flux-build serve     one request per line on stdin, one answer per line on stdout
//	flux-build version
//
// A request is {"id": N, "root": "/abs/source/root", "kustomization": {…the Flux
// Kustomization object…}, "objects": [ConfigMaps and Secrets postBuild.substituteFrom may
// name], "strict": bool, "applied": bool, "overrides": {"/abs/file": "text"}}.
//   - The generated kustomization.yaml over spec.path is never written: the build reads it
//     from memory (the controller writes it into its own copy of the source).
//   - "objects" stand in for the cluster the controller reads substituteFrom from (a fake
//     client: LoadVariables runs as in the controller, optional refs and all).
//   - "strict": the controller runs with --feature-gates=StrictPostBuildSubstitutions=true.
//   - "applied": also what the controller does at apply time (normalize, the
//     kustomize.toolkit.fluxcd.io/name|namespace owner labels); commonMetadata is always set.
//   - "substitute": objects built elsewhere (a dev overlay) run through the Kustomization's
//     post-build substitution only, object by object as the controller does after its build.
//
// The answer is {"id": N, "objects": [...]} or {"id": N, "error": "..."} with the message the
// controller puts in the Kustomization's Ready condition. EOF on stdin ends the process.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/fluxcd/pkg/kustomize"
	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/kustomize/api/konfig"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/api/resmap"
	kustypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/kustomize/kyaml/openapi"
)

const version = "0.1.0"

type request struct {
	ID            int                      `json:"id"`
	Root          string                   `json:"root"`
	Kustomization map[string]interface{}   `json:"kustomization"`
	Objects       []map[string]interface{} `json:"objects"`
	Strict        bool                     `json:"strict"`
	Applied       bool                     `json:"applied"`
	Overrides     map[string]string        `json:"overrides"`
	// objects to substitute as the Kustomization's postBuild would, instead of building its
	// path (the dev loop: its dev overlay's objects see the values prod's Kustomization gives)
	Substitute []map[string]interface{} `json:"substitute"`
}

type answer struct {
	ID      int             `json:"id"`
	Objects json.RawMessage `json:"objects,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// memoryFS reads some files from memory (the generated kustomization.yaml, overrides) and
// everything else through the controller's secure file system. It also notes a kustomization
// file that mentions `openapi` (see kustomizeBuild).
type memoryFS struct {
	filesys.FileSystem
	files map[string][]byte
	// called before a kustomization file that mentions `openapi` is handed to kustomize
	openAPI func()
}

func (m memoryFS) ReadFile(p string) ([]byte, error) {
	b, ok := m.files[filepath.Clean(p)]
	if !ok {
		var err error
		if b, err = m.FileSystem.ReadFile(p); err != nil {
			return nil, err
		}
	}
	if isKustomizationFile(p) && bytes.Contains(b, []byte("openapi")) {
		m.openAPI()
	}
	return b, nil
}

func isKustomizationFile(p string) bool {
	base := filepath.Base(p)
	for _, name := range konfig.RecognizedKustomizationFileNames() {
		if base == name {
			return true
		}
	}
	return false
}

func (m memoryFS) Exists(p string) bool {
	if _, ok := m.files[filepath.Clean(p)]; ok {
		return true
	}
	return m.FileSystem.Exists(p)
}

func (m memoryFS) IsDir(p string) bool {
	if _, ok := m.files[filepath.Clean(p)]; ok {
		return false
	}
	return m.FileSystem.IsDir(p)
}

// kustomize's build is not safe to run concurrently (kustomize#3659: the controller's Build
// holds a global mutex for it); the rest of a request (generate, post-build substitution,
// reading and normalizing the objects) runs concurrently, as in the controller's reconcilers.
var buildMu sync.Mutex

// The controller's Build resets kyaml's global OpenAPI schema and parses kustomize's built-in
// Kubernetes schema again on every build (fluxcd/pkg/kustomize: resetOpenAPIWithBuiltins), so
// that an `openapi:` field of one build's kustomization.yaml does not leak into the next one.
// That parse is most of a small build's time. A build that declares no `openapi:` in any of
// its kustomization files leaves the schema as the reset made it (SetSchema of an empty field
// changes nothing, and the parsed schema is only read), so the next build starts from it as it
// is. The schema is reset before a build only after one that read a kustomization file
// mentioning `openapi`, left a schema version other than the built-in one, or panicked.
var (
	schemaClean    bool
	builtinVersion = openapi.GetSchemaVersion()
)

// schemaMu guards kyaml's global schema: kustomize's resources read it (a resource id asks it
// whether a kind is cluster-scoped) without a lock of kyaml's. Work on kustomize resources
// holds it shared; a reset, and a build that declares `openapi:`, hold it alone.
var schemaMu sync.RWMutex

func readingSchema(f func() error) error {
	schemaMu.RLock()
	defer schemaMu.RUnlock()
	return f()
}

// schemaHold is a build's hold on schemaMu: shared, made exclusive before the build sets a
// schema of its own.
type schemaHold struct{ alone bool }

func (h *schemaHold) makeAlone() {
	if !h.alone {
		schemaMu.RUnlock()
		schemaMu.Lock()
		h.alone = true
	}
}

func (h *schemaHold) release() {
	if h.alone {
		schemaMu.Unlock()
	} else {
		schemaMu.RUnlock()
	}
}

// loadBuiltinSchema resets the schema to kustomize's built-ins, as the controller's Build does
// before each build. Called with buildMu held.
func loadBuiltinSchema() {
	schemaMu.Lock()
	defer schemaMu.Unlock()
	openapi.ResetOpenAPI()
	_ = openapi.Schema()
	schemaClean = true
}

// kustomizeBuild is fluxcd/pkg/kustomize.Build (the controller's krusty options, its panic
// recovery, a build that starts from kustomize's built-in schema) with the reset done only
// when a previous build changed the schema.
func kustomizeBuild(fs filesys.FileSystem, files map[string][]byte, dirPath string) (res resmap.ResMap, err error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if !schemaClean {
		loadBuiltinSchema()
	}
	hold := &schemaHold{}
	schemaMu.RLock()
	defer hold.release()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recovered from kustomize build panic: %v", r)
			schemaClean = false
		}
	}()
	schemaClean = false
	declared := false
	k := krusty.MakeKustomizer(&krusty.Options{
		LoadRestrictions: kustypes.LoadRestrictionsNone,
		PluginConfig:     kustypes.DisabledPluginConfig(),
	})
	res, err = k.Run(memoryFS{FileSystem: fs, files: files, openAPI: func() {
		declared = true
		hold.makeAlone()
	}}, dirPath)
	schemaClean = !declared && openapi.GetSchemaVersion() == builtinVersion
	return res, err
}

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Printf("flux-build %s (fluxcd/pkg/kustomize v1.35.6, kustomize api v0.21.1, as kustomize-controller v1.9.5)\n", version)
		return
	}
	if len(os.Args) != 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: flux-build serve|version")
		os.Exit(2)
	}
	// kustomize allocates a fresh tree of YAML nodes per object and build, and keeps none of it
	// between requests: collecting at 4x the live heap instead of 2x spends less of a build on
	// the collector (about a tenth of a 400-object build here) for some 25 MB more at its peak.
	debug.SetGCPercent(400)
	if p := os.Getenv("FLUX_BUILD_CPUPROFILE"); p != "" {
		// for bench/README.md's "where the time went": `go tool pprof` on the file after EOF
		f, err := os.Create(p)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	serve(os.Stdin, os.Stdout)
}

// serve answers requests in their order, working on several at once: the caller (nsops'
// JSON-lines child) matches answers to requests by order.
func serve(stdin *os.File, stdout *os.File) {
	in := bufio.NewReaderSize(stdin, 1<<16)
	out := bufio.NewWriterSize(stdout, 1<<20)
	type pending struct {
		done chan struct{}
		ans  answer
	}
	queue := make(chan *pending, 4096)
	slots := make(chan struct{}, 2*runtime.GOMAXPROCS(0))
	written := make(chan struct{})
	// the built-in schema parsed while the caller is still finding what to build
	go func() {
		buildMu.Lock()
		defer buildMu.Unlock()
		if !schemaClean {
			loadBuiltinSchema()
		}
	}()
	go func() {
		defer close(written)
		enc := json.NewEncoder(out)
		for p := range queue {
			<-p.done
			if err := enc.Encode(p.ans); err != nil {
				os.Exit(1)
			}
			// flush when nothing else is ready: one write for answers that finish together
			if len(queue) == 0 {
				if err := out.Flush(); err != nil {
					os.Exit(1)
				}
			}
		}
		if err := out.Flush(); err != nil {
			os.Exit(1)
		}
	}()
	for {
		line, err := in.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			p := &pending{done: make(chan struct{})}
			queue <- p
			slots <- struct{}{}
			go func() {
				defer func() { <-slots }()
				defer close(p.done)
				var req request
				if jerr := json.Unmarshal(line, &req); jerr != nil {
					p.ans.Error = "flux-build: unreadable request: " + jerr.Error()
					return
				}
				objs, berr := build(req)
				p.ans.ID = req.ID
				if berr != nil {
					p.ans.Error = berr.Error()
				} else {
					p.ans.Objects = objs
				}
			}()
		}
		if err != nil {
			close(queue)
			<-written
			return
		}
	}
}

func build(req request) (out json.RawMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("flux-build: %v", r)
		}
	}()
	u := unstructured.Unstructured{Object: req.Kustomization}
	if req.Substitute != nil {
		err = readingSchema(func() error {
			out, err = substituteOnly(req, u)
			return err
		})
		return out, err
	}
	root, err := filepath.Abs(req.Root)
	if err != nil {
		return nil, err
	}
	specPath, _, _ := unstructured.NestedString(u.Object, "spec", "path")
	// as the controller: securejoin.SecureJoin(tmpDir, obj.Spec.Path), and a missing path is an error
	dirPath, err := securejoin.SecureJoin(root, specPath)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dirPath); err != nil {
		return nil, fmt.Errorf("kustomization path not found: %w", err)
	}

	files := map[string][]byte{}
	for p, text := range req.Overrides {
		files[filepath.Clean(p)] = []byte(text)
	}
	// generate: the controller writes this file into its copy of the source; we hand it to
	// the build from memory. Overrides are seen by the generator too (it reads the user's
	// kustomization.yaml through the same reads).
	err = readingSchema(func() error {
		gen := kustomize.NewGenerator(root, u)
		manifest, kfile, _, err := generateWith(gen, root, files, dirPath)
		if err != nil {
			return err
		}
		files[filepath.Clean(kfile)] = manifest
		return nil
	})
	if err != nil {
		return nil, err
	}

	secure, err := securefs.MakeFsOnDiskSecureBuild(root)
	if err != nil {
		return nil, err
	}
	m, err := kustomizeBuild(secure, files, dirPath)
	if err != nil {
		return nil, fmt.Errorf("kustomize build failed: %w", err)
	}

	var resources []byte
	err = readingSchema(func() error {
		resources, err = substitute(req, u, m)
		return err
	})
	if err != nil {
		return nil, err
	}
	objects, err := ssautil.ReadObjects(bytes.NewReader(resources))
	if err != nil {
		return nil, err
	}
	if req.Applied {
		if err := normalize.UnstructuredList(objects); err != nil {
			return nil, err
		}
	}
	labels, _, _ := unstructured.NestedStringMap(u.Object, "spec", "commonMetadata", "labels")
	annotations, _, _ := unstructured.NestedStringMap(u.Object, "spec", "commonMetadata", "annotations")
	if len(labels) > 0 || len(annotations) > 0 {
		ssautil.SetCommonMetadata(objects, labels, annotations)
	}
	if req.Applied {
		for _, o := range objects {
			l := o.GetLabels()
			if l == nil {
				l = map[string]string{}
			}
			l["kustomize.toolkit.fluxcd.io/name"] = u.GetName()
			l["kustomize.toolkit.fluxcd.io/namespace"] = u.GetNamespace()
			o.SetLabels(l)
		}
	}
	list := make([]map[string]interface{}, len(objects))
	for i, o := range objects {
		list[i] = o.Object
	}
	return json.Marshal(list)
}

// substitute is the controller's post-build substitution of every object, then the build's YAML.
func substitute(req request, u unstructured.Unstructured, m resmap.ResMap) ([]byte, error) {
	postBuild, hasPostBuild, _ := unstructured.NestedMap(u.Object, "spec", "postBuild")
	var kubeClient client.Client
	if hasPostBuild && postBuild != nil {
		var err error
		kubeClient, err = fakeCluster(req.Objects, u.GetNamespace())
		if err != nil {
			return nil, err
		}
	}
	for _, res := range m.Resources() {
		if res.GetName() == "" || res.GetKind() == "" || res.GetApiVersion() == "" {
			return nil, fmt.Errorf("failed to decode Kubernetes apiVersion, kind and name from: %v", res.String())
		}
		if hasPostBuild && postBuild != nil {
			strategy, _, _ := unstructured.NestedString(u.Object, "spec", "postBuild", "substituteStrategy")
			always := strategy == "Always"
			outRes, err := kustomize.SubstituteVariables(context.Background(), kubeClient, u, res,
				kustomize.SubstituteWithStrict(req.Strict),
				kustomize.SubstituteWithAlways(always))
			if err != nil {
				return nil, fmt.Errorf("post build failed for '%s/%s': %w", res.GetGvk(), res.GetName(), err)
			}
			if outRes != nil {
				if _, err := m.Replace(res); err != nil {
					return nil, err
				}
			}
		}
	}
	resources, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build failed: %w", err)
	}
	return resources, nil
}

// substituteOnly runs the controller's SubstituteVariables on objects built elsewhere.
func substituteOnly(req request, u unstructured.Unstructured) (json.RawMessage, error) {
	kubeClient, err := fakeCluster(req.Objects, u.GetNamespace())
	if err != nil {
		return nil, err
	}
	strategy, _, _ := unstructured.NestedString(u.Object, "spec", "postBuild", "substituteStrategy")
	rf := provider.NewDefaultDepProvider().GetResourceFactory()
	list := make([]map[string]interface{}, 0, len(req.Substitute))
	for _, obj := range req.Substitute {
		res, err := rf.FromMap(obj)
		if err != nil {
			return nil, err
		}
		outRes, err := kustomize.SubstituteVariables(context.Background(), kubeClient, u, res,
			kustomize.SubstituteWithStrict(req.Strict),
			kustomize.SubstituteWithAlways(strategy == "Always"))
		if err != nil {
			return nil, fmt.Errorf("post build failed for '%s/%s': %w", res.GetGvk(), res.GetName(), err)
		}
		if outRes != nil {
			res = outRes
		}
		m, err := res.Map()
		if err != nil {
			return nil, err
		}
		list = append(list, m)
	}
	return json.Marshal(list)
}

// generateWith runs the controller's generator. Overrides of the user's own kustomization
// file must be visible to it, but the generator reads through its own secure file system;
// when an override names the kustomization file in spec.path, the generator is run on a
// copy of the object with that file's text (rare: the dev loop's partial builds).
func generateWith(gen *kustomize.Generator, root string, files map[string][]byte, dirPath string) ([]byte, string, kustomize.Action, error) {
	for _, name := range []string{"kustomization.yaml", "kustomization.yml", "Kustomization"} {
		if _, ok := files[filepath.Join(dirPath, name)]; ok {
			return nil, "", kustomize.UnchangedAction, fmt.Errorf("flux-build: overriding %s is not supported", name)
		}
	}
	return gen.GenerateManifest(dirPath)
}

// fakeCluster is the cluster the controller's LoadVariables reads: the ConfigMaps and Secrets
// the caller found (in the cluster when connected, else in the repository's builds). It is
// only read (Get), so one is kept per set of objects: a tree's apps mostly name the same
// cluster-settings, and a fake client costs a client-go scheme and type converters to make.
func fakeCluster(objects []map[string]interface{}, namespace string) (client.Client, error) {
	key, err := json.Marshal(struct {
		N string
		O []map[string]interface{}
	}{namespace, objects})
	if err != nil {
		return nil, err
	}
	clusters.Lock()
	c, ok := clusters.byKey[string(key)]
	clusters.Unlock()
	if ok {
		return c, nil
	}
	c, err = newFakeCluster(objects, namespace)
	if err != nil {
		return nil, err
	}
	clusters.Lock()
	if len(clusters.byKey) >= 64 {
		clusters.byKey = map[string]client.Client{}
	}
	clusters.byKey[string(key)] = c
	clusters.Unlock()
	return c, nil
}

var clusters = struct {
	sync.Mutex
	byKey map[string]client.Client
}{byKey: map[string]client.Client{}}

func newFakeCluster(objects []map[string]interface{}, namespace string) (client.Client, error) {
	scheme := k8sruntime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, raw := range objects {
		u := unstructured.Unstructured{Object: raw}
		if u.GetNamespace() == "" {
			u.SetNamespace(namespace)
		}
		switch u.GetKind() {
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cm); err != nil {
				return nil, fmt.Errorf("ConfigMap/%s: %w", u.GetName(), err)
			}
			b = b.WithObjects(&cm)
		case "Secret":
			var s corev1.Secret
			if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
				return nil, fmt.Errorf("Secret/%s: %w", u.GetName(), err)
			}
			// what the API server stores: stringData merged into data
			if len(s.StringData) > 0 {
				if s.Data == nil {
					s.Data = map[string][]byte{}
				}
				for k, v := range s.StringData {
					s.Data[k] = []byte(v)
				}
				s.StringData = nil
			}
			b = b.WithObjects(&s)
		}
	}
	return b.Build(), nil
}
