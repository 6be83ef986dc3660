package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"

	jsonnet "github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"
	yaml "gopkg.in/yaml.v3"
)

// nativeFuncs are Tanka's std.native functions with Tanka's names, parameters and
// semantics (grafana/tanka pkg/jsonnet/native and pkg/helm). Not provided:
// kustomizeBuild and promQLRemoveByLabels, which nothing here uses.
func nativeFuncs(helm helmConfig) []*jsonnet.NativeFunction {
	return []*jsonnet.NativeFunction{
		parseJSON(),
		parseYAML(),
		manifestJSONFromJSON(),
		manifestYAMLFromJSON(),
		escapeStringRegex(),
		regexMatch(),
		regexSubst(),
		sha256Hex(),
		helmTemplate(helm),
	}
}

func str(args []interface{}, i int, fn, param string) (string, error) {
	s, ok := args[i].(string)
	if !ok {
		return "", fmt.Errorf("%s: argument '%s' must be of 'string' type, got '%T' instead", fn, param, args[i])
	}
	return s, nil
}

func parseJSON() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "parseJson",
		Params: ast.Identifiers{"json"},
		Func: func(args []interface{}) (res interface{}, err error) {
			s, err := str(args, 0, "parseJson", "json")
			if err != nil {
				return nil, err
			}
			err = json.Unmarshal([]byte(s), &res)
			return res, err
		},
	}
}

// parseYaml returns every document of a YAML stream, as a list.
func parseYAML() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "parseYaml",
		Params: ast.Identifiers{"yaml"},
		Func: func(args []interface{}) (interface{}, error) {
			s, err := str(args, 0, "parseYaml", "yaml")
			if err != nil {
				return nil, err
			}
			ret := []interface{}{}
			d := yaml.NewDecoder(strings.NewReader(s))
			for {
				var doc interface{}
				if err := d.Decode(&doc); err != nil {
					if err == io.EOF {
						break
					}
					return nil, fmt.Errorf("parsing yaml: %w", err)
				}
				j, err := viaJSON(doc)
				if err != nil {
					return nil, fmt.Errorf("converting yaml to json: %w", err)
				}
				ret = append(ret, j)
			}
			return ret, nil
		},
	}
}

// viaJSON turns decoded YAML into the plain JSON types go-jsonnet accepts.
func viaJSON(v interface{}) (interface{}, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out interface{}
	err = json.Unmarshal(raw, &out)
	return out, err
}

func manifestJSONFromJSON() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "manifestJsonFromJson",
		Params: ast.Identifiers{"json", "indent"},
		Func: func(args []interface{}) (interface{}, error) {
			s, err := str(args, 0, "manifestJsonFromJson", "json")
			if err != nil {
				return nil, err
			}
			indent, ok := args[1].(float64)
			if !ok {
				return nil, fmt.Errorf("manifestJsonFromJson: argument 'indent' must be a number, got '%T' instead", args[1])
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, bytes.TrimSpace([]byte(s)), "", strings.Repeat(" ", int(indent))); err != nil {
				return "", err
			}
			buf.WriteString("\n")
			return buf.String(), nil
		},
	}
}

func manifestYAMLFromJSON() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "manifestYamlFromJson",
		Params: ast.Identifiers{"json"},
		Func: func(args []interface{}) (interface{}, error) {
			s, err := str(args, 0, "manifestYamlFromJson", "json")
			if err != nil {
				return nil, err
			}
			var input interface{}
			if err := json.Unmarshal([]byte(s), &input); err != nil {
				return "", err
			}
			out, err := yaml.Marshal(input)
			return string(out), err
		},
	}
}

func escapeStringRegex() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "escapeStringRegex",
		Params: ast.Identifiers{"str"},
		Func: func(args []interface{}) (interface{}, error) {
			s, err := str(args, 0, "escapeStringRegex", "str")
			if err != nil {
				return nil, err
			}
			return regexp.QuoteMeta(s), nil
		},
	}
}

// regexMatch and regexSubst use Go's RE2 syntax, as Tanka does.
func regexMatch() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "regexMatch",
		Params: ast.Identifiers{"regex", "string"},
		Func: func(args []interface{}) (interface{}, error) {
			re, err := str(args, 0, "regexMatch", "regex")
			if err != nil {
				return nil, err
			}
			s, err := str(args, 1, "regexMatch", "string")
			if err != nil {
				return nil, err
			}
			return regexp.MatchString(re, s)
		},
	}
}

func regexSubst() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "regexSubst",
		Params: ast.Identifiers{"regex", "src", "repl"},
		Func: func(args []interface{}) (interface{}, error) {
			re, err := str(args, 0, "regexSubst", "regex")
			if err != nil {
				return nil, err
			}
			src, err := str(args, 1, "regexSubst", "src")
			if err != nil {
				return nil, err
			}
			repl, err := str(args, 2, "regexSubst", "repl")
			if err != nil {
				return nil, err
			}
			r, err := regexp.Compile(re)
			if err != nil {
				return "", err
			}
			return r.ReplaceAllString(src, repl), nil
		},
	}
}

func sha256Hex() *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "sha256",
		Params: ast.Identifiers{"str"},
		Func: func(args []interface{}) (interface{}, error) {
			s, err := str(args, 0, "sha256", "str")
			if err != nil {
				return nil, err
			}
			return fmt.Sprintf("%x", sha256.Sum256([]byte(s))), nil
		},
	}
}
