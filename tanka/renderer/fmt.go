package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-jsonnet/formatter"
)

// formatPaths is `tk fmt`: jsonnetfmt with the default options over every .jsonnet and
// .libsonnet file under the given paths, skipping vendor/ and hidden entries as tk does.
// It returns the files whose formatting differs; with write, it rewrites them.
func formatPaths(paths []string, write bool) ([]string, error) {
	var files []string
	for _, p := range paths {
		found, err := jsonnetFiles(p)
		if err != nil {
			return nil, err
		}
		files = append(files, found...)
	}
	sort.Strings(files)

	var changed []string
	for _, f := range files {
		content, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		formatted, err := formatter.Format(f, string(content), formatter.DefaultOptions())
		if err != nil {
			return nil, syntaxError(f, err)
		}
		if formatted == string(content) {
			continue
		}
		changed = append(changed, f)
		if write {
			if err := os.WriteFile(f, []byte(formatted), 0o644); err != nil {
				return nil, err
			}
		}
	}
	return changed, nil
}

func jsonnetFiles(root string) ([]string, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{root}, nil
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if p != root && (name[0] == '.' || (d.IsDir() && name == "vendor")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && (filepath.Ext(p) == ".jsonnet" || filepath.Ext(p) == ".libsonnet") {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// syntaxError names the file, line and column of a file the formatter cannot parse, in the
// form reportError prints (go-jsonnet's parser leaves the location's file name empty here).
func syntaxError(file string, err error) error {
	l, ok := err.(located)
	if !ok {
		return err
	}
	loc := l.Loc()
	msg := strings.TrimSpace(strings.TrimPrefix(err.Error(), loc.String()))
	out, _ := json.Marshal(renderError{Kind: "static", File: file, Line: loc.Begin.Line, Column: loc.Begin.Column, Message: msg})
	return errors.New(string(out))
}
