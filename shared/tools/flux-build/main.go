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
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/fluxcd/pkg/kustomize"
	securefs "github.com/fluxcd/pkg/kustomize/filesys"
	"github.com/fluxcd/pkg/ssa/normalize"
	ssautil "github.com/fluxcd/pkg/ssa/utils"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/kustomize/api/provider"
	"sigs.k8s.io/kustomize/kyaml/filesys"
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
// everything else through the controller's secure file system.
type memoryFS struct {
	filesys.FileSystem
	files map[string][]byte
}

func (m memoryFS) ReadFile(p string) ([]byte, error) {
	if b, ok := m.files[filepath.Clean(p)]; ok {
		return b, nil
	}
	return m.FileSystem.ReadFile(p)
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

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Printf("flux-build %s (fluxcd/pkg/kustomize v1.35.6, kustomize api v0.21.1, as kustomize-controller v1.9.5)\n", version)
		return
	}
	if len(os.Args) != 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: flux-build serve|version")
		os.Exit(2)
	}
	in := bufio.NewReaderSize(os.Stdin, 1<<16)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	enc := json.NewEncoder(out)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			var ans answer
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				ans.Error = "flux-build: unreadable request: " + jerr.Error()
			} else {
				objs, berr := build(req)
				ans.ID = req.ID
				if berr != nil {
					ans.Error = berr.Error()
				} else {
					ans.Objects = objs
				}
			}
			if werr := enc.Encode(ans); werr != nil {
				os.Exit(1)
			}
			if ferr := out.Flush(); ferr != nil {
				os.Exit(1)
			}
		}
		if err != nil {
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
		return substituteOnly(req, u)
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
	gen := kustomize.NewGenerator(root, u)
	manifest, kfile, _, err := generateWith(gen, root, files, dirPath)
	if err != nil {
		return nil, err
	}
	files[filepath.Clean(kfile)] = manifest

	secure, err := securefs.MakeFsOnDiskSecureBuild(root)
	if err != nil {
		return nil, err
	}
	m, err := kustomize.Build(memoryFS{FileSystem: secure, files: files}, dirPath)
	if err != nil {
		return nil, fmt.Errorf("kustomize build failed: %w", err)
	}

	postBuild, hasPostBuild, _ := unstructured.NestedMap(u.Object, "spec", "postBuild")
	var kubeClient client.Client
	if hasPostBuild && postBuild != nil {
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
	objects, err := ssautil.ReadObjects(strings.NewReader(string(resources)))
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
// the caller found (in the cluster when connected, else in the repository's builds).
func fakeCluster(objects []map[string]interface{}, namespace string) (client.Client, error) {
	scheme := runtime.NewScheme()
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
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &cm); err != nil {
				return nil, fmt.Errorf("ConfigMap/%s: %w", u.GetName(), err)
			}
			b = b.WithObjects(&cm)
		case "Secret":
			var s corev1.Secret
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
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
