package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	jsonnet "github.com/google/go-jsonnet"
)

// Tanka's project layout: the root holds tkrc.yaml (or jsonnetfile.json), lib/ and vendor/;
// an environment's base directory holds main.jsonnet and spec.json.
const (
	entrypoint  = "main.jsonnet"
	specFile    = "spec.json"
	extCodeName = "tanka.dev/environment"
	// `import "tk"` is served from memory, as tk does.
	tkLibsonnet = "\n{\n  env: std.extVar(\"tanka.dev/environment\"),\n}\n"
)

func jsonnetVersion() string { return jsonnet.Version() }

// evalEnvironment evaluates <dir>/main.jsonnet the way `tk eval <dir>` does and returns its JSON.
func evalEnvironment(dir string, helm helmConfig) (string, error) {
	base, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	main := filepath.Join(base, entrypoint)
	if _, err := os.Stat(main); err != nil {
		return "", usageError{fmt.Sprintf("%s has no %s", base, entrypoint)}
	}
	root, err := findRoot(base)
	if err != nil {
		return "", err
	}
	env, err := environmentExtCode(root, base, main)
	if err != nil {
		return "", err
	}

	vm := jsonnet.MakeVM()
	vm.ErrorFormatter = &structuredErrors{}
	vm.Importer(&tankaImporter{files: &jsonnet.FileImporter{JPaths: importPaths(root, base)}})
	vm.ExtCode(extCodeName, env)
	for _, f := range nativeFuncs(helm) {
		vm.NativeFunction(f)
	}
	out, err := vm.EvaluateFile(main)
	if err != nil {
		return "", err
	}
	return out, nil
}

// importPaths is Tanka's jpath: go-jsonnet searches it from the end, so an import is
// looked up next to the importing file, then in the environment directory, <root>/lib,
// <env>/vendor and <root>/vendor.
func importPaths(root, base string) []string {
	return []string{
		filepath.Join(root, "vendor"),
		filepath.Join(base, "vendor"),
		filepath.Join(root, "lib"),
		base,
	}
}

// findRoot walks up from the environment directory to the project root as tk does:
// the nearest directory holding tkrc.yaml, else the nearest holding jsonnetfile.json.
func findRoot(start string) (string, error) {
	for _, marker := range []string{"tkrc.yaml", "jsonnetfile.json"} {
		for dir := start; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", usageError{fmt.Sprintf("no tkrc.yaml or jsonnetfile.json in %s or any directory above it; Tanka needs one to find the project root", start)}
}

type tankaImporter struct {
	files *jsonnet.FileImporter
}

func (t *tankaImporter) Import(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	if importedPath == "tk" {
		return jsonnet.MakeContents(tkLibsonnet), filepath.Join("<internal>", "tk.libsonnet"), nil
	}
	return t.files.Import(importedFrom, importedPath)
}

// environment mirrors Tanka's v1alpha1.Environment, so std.extVar("tanka.dev/environment")
// (and `(import "tk").env`) reads the same object under both renderers.
type environment struct {
	APIVersion string      `json:"apiVersion"`
	Kind       string      `json:"kind"`
	Metadata   envMetadata `json:"metadata"`
	Spec       envSpec     `json:"spec"`
	Data       interface{} `json:"data,omitempty"`
}

type envMetadata struct {
	Name      string            `json:"name,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
}

type envSpec struct {
	APIServer        string           `json:"apiServer"`
	ContextNames     []string         `json:"contextNames"`
	Namespace        string           `json:"namespace"`
	DiffStrategy     string           `json:"diffStrategy,omitempty"`
	InjectLabels     bool             `json:"injectLabels,omitempty"`
	ResourceDefaults resourceDefaults `json:"resourceDefaults"`
	ExpectVersions   expectVersions   `json:"expectVersions"`
}

type resourceDefaults struct {
	Annotations map[string]string `json:"annotations,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
}

type expectVersions struct {
	Tanka string `json:"tanka,omitempty"`
}

var hasScheme = regexp.MustCompile("^.+://")

func environmentExtCode(root, base, main string) (string, error) {
	env := environment{APIVersion: "tanka.dev/v1alpha1", Kind: "Environment"}
	env.Spec.Namespace = "default"
	env.Metadata.Labels = map[string]string{}
	data, err := os.ReadFile(filepath.Join(base, specFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err == nil {
		if err := json.Unmarshal(data, &env); err != nil {
			return "", usageError{fmt.Sprintf("%s: %v", filepath.Join(base, specFile), err)}
		}
		if !hasScheme.MatchString(env.Spec.APIServer) {
			env.Spec.APIServer = "https://" + env.Spec.APIServer
		}
	}
	// As tk: the name is the environment's path from the root, the namespace its entrypoint's.
	if env.Metadata.Name, err = filepath.Rel(root, base); err != nil {
		return "", err
	}
	if env.Metadata.Namespace, err = filepath.Rel(root, main); err != nil {
		return "", err
	}
	out, err := json.Marshal(env)
	return string(out), err
}

// usageError is a problem with the input that is not a Jsonnet error (no location).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
