package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	jsonnet "github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"
	yaml "gopkg.in/yaml.v3"
)

// defaultNameFormat keys helmTemplate's result, as Tanka's: deployment_my_app.
const defaultNameFormat = `{{ print .kind "_" .metadata.name | snakecase }}`

// helmOpts is helmTemplate's third argument (Tanka's helm.JsonnetOpts).
type helmOpts struct {
	Values      map[string]interface{} `json:"values"`
	APIVersions []string               `json:"apiVersions"`
	IncludeCRDs bool                   `json:"includeCrds"`
	KubeVersion string                 `json:"kubeVersion"`
	Namespace   string                 `json:"namespace"`
	NoHooks     bool                   `json:"noHooks"`
	SkipTests   bool                   `json:"skipTests"`
	// CalledFrom is the file that calls helmTemplate; the chart path is relative to its directory.
	CalledFrom string `json:"calledFrom"`
	NameFormat string `json:"nameFormat"`
}

// helmConfig is how helmTemplate runs helm: the binary, and the Kubernetes version of the
// cluster the output is for (--kube-version), used where a call sets no kubeVersion itself.
// Without it helm assumes the version compiled into it, which charts' kubeVersion
// constraints and .Capabilities.KubeVersion checks then see.
type helmConfig struct {
	Path        string
	KubeVersion string
}

// helmTemplate is std.native('helmTemplate')(name, chart, opts): `helm template` of a
// vendored chart, returned as an object of its manifests keyed by nameFormat.
func helmTemplate(helm helmConfig) *jsonnet.NativeFunction {
	return &jsonnet.NativeFunction{
		Name:   "helmTemplate",
		Params: ast.Identifiers{"name", "chart", "opts"},
		Func: func(args []interface{}) (interface{}, error) {
			name, ok := args[0].(string)
			if !ok {
				return nil, fmt.Errorf("first argument 'name' must be of 'string' type, got '%T' instead", args[0])
			}
			chartPath, ok := args[1].(string)
			if !ok {
				return nil, fmt.Errorf("second argument 'chart' must be of 'string' type, got '%T' instead", args[1])
			}
			opts, err := parseHelmOpts(args[2])
			if err != nil {
				return nil, err
			}
			chart := filepath.Join(filepath.Dir(opts.CalledFrom), chartPath)
			if _, err := os.Stat(chart); err != nil {
				return nil, fmt.Errorf("helmTemplate: Failed to find a chart at '%s': %s. See https://tanka.dev/helm#failed-to-find-chart", chart, err)
			}
			if opts.KubeVersion == "" {
				opts.KubeVersion = helm.KubeVersion
			}
			list, err := runHelmTemplate(helm.Path, name, chart, opts)
			if err != nil {
				return nil, err
			}
			return listAsMap(list, opts.NameFormat)
		},
	}
}

func parseHelmOpts(data interface{}) (*helmOpts, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	// CRDs are included unless asked otherwise, as `helm install` does.
	opts := helmOpts{IncludeCRDs: true}
	if err := json.Unmarshal(raw, &opts); err != nil {
		return nil, fmt.Errorf("helmTemplate: the third argument (opts) is malformed: %w", err)
	}
	if opts.CalledFrom == "" {
		return nil, fmt.Errorf("helmTemplate: 'opts.calledFrom' is unset or empty.\nTanka needs this to find your charts. See https://tanka.dev/helm#optscalledfrom-unset")
	}
	return &opts, nil
}

func (o *helmOpts) flags() []string {
	var flags []string
	for _, v := range o.APIVersions {
		flags = append(flags, "--api-versions="+v)
	}
	if o.IncludeCRDs {
		flags = append(flags, "--include-crds")
	}
	if o.KubeVersion != "" {
		flags = append(flags, "--kube-version="+o.KubeVersion)
	}
	if o.NoHooks {
		flags = append(flags, "--no-hooks")
	}
	if o.SkipTests {
		flags = append(flags, "--skip-tests")
	}
	if o.Namespace != "" {
		flags = append(flags, "--namespace="+o.Namespace)
	}
	return flags
}

func runHelmTemplate(helmPath, name, chart string, opts *helmOpts) ([]map[string]interface{}, error) {
	values, err := yaml.Marshal(opts.Values)
	if err != nil {
		return nil, fmt.Errorf("converting Helm values to YAML: %w", err)
	}
	valuesFile, err := os.CreateTemp("", "tanka-values-*.yaml")
	if err != nil {
		return nil, err
	}
	defer os.Remove(valuesFile.Name())
	if _, err := valuesFile.Write(values); err != nil {
		valuesFile.Close()
		return nil, err
	}
	if err := valuesFile.Close(); err != nil {
		return nil, err
	}

	args := append([]string{"template", name, chart, "--values", valuesFile.Name()}, opts.flags()...)
	cmd := exec.Command(helmPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		detail := strings.TrimSpace(stderr.String())
		if detail == "" {
			detail = err.Error()
		}
		return nil, fmt.Errorf("helmTemplate: helm template %s %s failed: %s", name, chart, detail)
	}

	var list []map[string]interface{}
	d := yaml.NewDecoder(&stdout)
	for {
		var m map[string]interface{}
		if err := d.Decode(&m); err != nil {
			if err == io.EOF {
				break
			}
			return nil, fmt.Errorf("helmTemplate: parsing the output of helm template %s: %w", chart, err)
		}
		// documents holding only comments (a template rendered empty) decode to nothing
		if len(m) == 0 {
			continue
		}
		j, err := viaJSON(m)
		if err != nil {
			return nil, fmt.Errorf("helmTemplate: converting the output of %s to JSON: %w", chart, err)
		}
		list = append(list, j.(map[string]interface{}))
	}
	return list, nil
}

func listAsMap(list []map[string]interface{}, nameFormat string) (map[string]interface{}, error) {
	if nameFormat == "" {
		nameFormat = defaultNameFormat
	}
	tmpl, err := template.New("").Funcs(sprig.TxtFuncMap()).Parse(nameFormat)
	if err != nil {
		return nil, fmt.Errorf("parsing name format: %w", err)
	}
	out := make(map[string]interface{}, len(list))
	for _, m := range list {
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, m); err != nil {
			return nil, err
		}
		key := buf.String()
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("two resources share the same name '%s'. Please adapt the name template '%s'", key, nameFormat)
		}
		out[key] = m
	}
	return out, nil
}
