// tanka-renderer: a small Tanka-compatible renderer for machines without `tk`.
//
//	tanka-renderer eval [--helm PATH] [--kube-version V] [--errors json] ENV_DIR
//	    evaluate ENV_DIR/main.jsonnet as `tk eval` does; prints JSON. --kube-version is the
//	    target cluster's version, for helmTemplate calls that set no kubeVersion of their own
//	tanka-renderer fmt [--test] [--errors json] PATH...         jsonnetfmt (Tanka's `tk fmt`) over .jsonnet/.libsonnet files
//	tanka-renderer version
//
// It is go-jsonnet (the engine Tanka uses) with Tanka's import paths, its `import "tk"`
// and its native functions (helmTemplate runs the helm binary from --helm or
// TANKA_HELM_PATH, as tk does). The Kubernetes post-processing that `tk show` adds
// (namespaces, labels, ordering) is done by the caller, nsops' shared/tanka.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

// version is reported by `tanka-renderer version`; the cache key is a hash of the sources.
const version = "0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: tanka-renderer eval|fmt|version ...")
		return 2
	}
	switch args[0] {
	case "eval":
		return runEval(args[1:], stdout, stderr)
	case "fmt":
		return runFmt(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "tanka-renderer %s (go-jsonnet %s)\n", version, jsonnetVersion())
		return 0
	default:
		fmt.Fprintf(stderr, "tanka-renderer: unknown command %q (eval, fmt, version)\n", args[0])
		return 2
	}
}

func runEval(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	helm := fs.String("helm", os.Getenv("TANKA_HELM_PATH"), "helm binary for helmTemplate (default $TANKA_HELM_PATH, else helm on PATH)")
	kubeVersion := fs.String("kube-version", "", "Kubernetes version helmTemplate renders for when a call sets no kubeVersion (e.g. v1.36.3)")
	errFormat := fs.String("errors", "text", "error format: text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: tanka-renderer eval [--helm PATH] [--kube-version V] [--errors json] ENV_DIR")
		return 2
	}
	if *helm == "" {
		*helm = "helm"
	}
	out, err := evalEnvironment(fs.Arg(0), helmConfig{Path: *helm, KubeVersion: *kubeVersion})
	if err != nil {
		reportError(stderr, *errFormat, err)
		return 1
	}
	fmt.Fprint(stdout, out)
	return 0
}

func runFmt(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fmt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	test := fs.Bool("test", false, "write nothing; list the files that are not formatted and exit 1 if there are any")
	errFormat := fs.String("errors", "text", "error format: text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: tanka-renderer fmt [--test] PATH...")
		return 2
	}
	changed, err := formatPaths(fs.Args(), !*test)
	if err != nil {
		reportError(stderr, *errFormat, err)
		return 2
	}
	for _, f := range changed {
		fmt.Fprintln(stdout, f)
	}
	if *test && len(changed) > 0 {
		return 1
	}
	return 0
}
