package main

import (
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	jsonnet "github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"
)

// renderError is what a caller gets with --errors json: where the problem is (file, line,
// column of the innermost location) and the message, plus the stack for --debug.
type renderError struct {
	Kind    string  `json:"kind"` // static, runtime, usage, internal
	Message string  `json:"message"`
	File    string  `json:"file,omitempty"`
	Line    int     `json:"line,omitempty"`
	Column  int     `json:"column,omitempty"`
	Trace   []frame `json:"trace,omitempty"`
}

type frame struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	Name   string `json:"name,omitempty"`
}

// structuredErrors replaces go-jsonnet's terminal formatter: VM errors come back as the
// JSON of a renderError, which reportError prints as it is or as text.
type structuredErrors struct{}

func (*structuredErrors) SetMaxStackTraceSize(int)                 {}
func (*structuredErrors) SetColorFormatter(jsonnet.ColorFormatter) {}

// A static error carries its own location; go-jsonnet's internal type is reached through Loc().
type located interface {
	Loc() ast.LocationRange
}

// An error in an imported file reaches us as a runtime error whose message starts with
// that file's location ("lib/x.libsonnet:3:5-9 Expected ...").
var leadingLocation = regexp.MustCompile(`^(\S+?):(\d+):(\d+)(?:-\d+)? (.*)$`)
var leadingRange = regexp.MustCompile(`^(\S+?):\((\d+):(\d+)\)-\(\d+:\d+\) (.*)$`)

func (*structuredErrors) Format(err error) string {
	re := renderError{Kind: "internal", Message: err.Error()}
	switch e := err.(type) {
	case jsonnet.RuntimeError:
		re.Kind = "runtime"
		re.Message = e.Msg
		// go-jsonnet's stack runs from the outermost frame to the innermost.
		for i := len(e.StackTrace) - 1; i >= 0; i-- {
			f := e.StackTrace[i]
			if !f.Loc.IsSet() {
				continue
			}
			re.Trace = append(re.Trace, frame{File: f.Loc.FileName, Line: f.Loc.Begin.Line, Column: f.Loc.Begin.Column, Name: f.Name})
		}
		// The innermost frame is often in the standard library (std.get on a null, say),
		// which has no file: the place to fix is the innermost frame in a user's file.
		for _, f := range re.Trace {
			if f.File != "" {
				re.File, re.Line, re.Column = f.File, f.Line, f.Column
				break
			}
		}
		if m := leadingLocation.FindStringSubmatch(e.Msg); m != nil {
			re.File, re.Line, re.Column, re.Message = m[1], atoi(m[2]), atoi(m[3]), m[4]
		} else if m := leadingRange.FindStringSubmatch(e.Msg); m != nil {
			re.File, re.Line, re.Column, re.Message = m[1], atoi(m[2]), atoi(m[3]), m[4]
		}
	case located:
		re.Kind = "static"
		loc := e.Loc()
		re.File, re.Line, re.Column = loc.FileName, loc.Begin.Line, loc.Begin.Column
		re.Message = strings.TrimSpace(strings.TrimPrefix(err.Error(), loc.String()))
	}
	re.Message = strings.TrimPrefix(re.Message, "STATIC ERROR: ")
	out, _ := json.Marshal(re)
	return string(out)
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// reportError prints err for a person (text) or for nsops (one JSON object).
func reportError(w io.Writer, format string, err error) {
	var re renderError
	if json.Unmarshal([]byte(err.Error()), &re) != nil || re.Kind == "" {
		re = renderError{Kind: "usage", Message: err.Error()}
		if l, ok := err.(located); ok {
			loc := l.Loc()
			re = renderError{Kind: "static", File: loc.FileName, Line: loc.Begin.Line, Column: loc.Begin.Column,
				Message: strings.TrimSpace(strings.TrimPrefix(err.Error(), loc.String()))}
		}
	}
	if format == "json" {
		out, _ := json.Marshal(re)
		fmt.Fprintln(w, string(out))
		return
	}
	where := ""
	if re.File != "" {
		where = fmt.Sprintf("%s:%d:%d: ", re.File, re.Line, re.Column)
	}
	fmt.Fprintf(w, "%s%s\n", where, re.Message)
	for _, f := range re.Trace {
		fmt.Fprintf(w, "\t%s:%d:%d\t%s\n", f.File, f.Line, f.Column, f.Name)
	}
}
