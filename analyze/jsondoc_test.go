package analyze

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestJSONDocs keeps docs/json.md equal to the report's JSON form: every
// object type reachable from Report has a section whose heading ends with
// its Go name in parentheses, and the section's table lists exactly that
// type's JSON fields, one row each (| `name` | ...).
func TestJSONDocs(t *testing.T) {
	b, err := os.ReadFile("../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := make(map[string][]string) // Go type name → fields in its table
	heading := regexp.MustCompile(`^#+ .*\((\w+)\)\s*$`)
	row := regexp.MustCompile("^\\| `([a-z0-9_]+)` \\|")
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		if m := heading.FindStringSubmatch(line); m != nil {
			cur = m[1]
			if _, dup := documented[cur]; dup {
				t.Errorf("docs/json.md has two sections for %s", cur)
			}
			documented[cur] = []string{}
			continue
		}
		if strings.HasPrefix(line, "#") {
			cur = ""
		}
		if m := row.FindStringSubmatch(line); m != nil && cur != "" {
			documented[cur] = append(documented[cur], m[1])
		}
	}

	types := reportTypes(reflect.TypeFor[Report]())
	for _, ty := range types {
		name := ty.Name()
		doc, ok := documented[name]
		if !ok {
			t.Errorf("docs/json.md has no section for %s (a heading ending in \"(%s)\")", name, name)
			continue
		}
		want := jsonFields(jsonForm(ty))
		for _, f := range want {
			if !slices.Contains(doc, f) {
				t.Errorf("docs/json.md, %s: field %s is not documented", name, f)
			}
		}
		for _, f := range doc {
			if !slices.Contains(want, f) {
				t.Errorf("docs/json.md, %s: documents %s, which the report does not have", name, f)
			}
		}
		if len(doc) != len(slices.Compact(slices.Sorted(slices.Values(doc)))) {
			t.Errorf("docs/json.md, %s: a field is listed twice", name)
		}
	}
	for name := range documented {
		if !slices.ContainsFunc(types, func(ty reflect.Type) bool { return ty.Name() == name }) {
			t.Errorf("docs/json.md has a section for %s, which is not part of the report", name)
		}
	}
}

// jsonForm is the type whose fields a type's JSON form has: ConnReport
// writes itself through connReportJSON (its directions under two names).
func jsonForm(ty reflect.Type) reflect.Type {
	if ty == reflect.TypeFor[ConnReport]() {
		return reflect.TypeFor[connReportJSON]()
	}
	return ty
}

// reportTypes lists the struct types reachable from ty through exported,
// JSON-visible fields (pointers, slices and map values followed), ty first.
func reportTypes(root reflect.Type) []reflect.Type {
	var out []reflect.Type
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || slices.Contains(out, ty) {
			return
		}
		out = append(out, ty)
		for _, f := range visibleFields(jsonForm(ty)) {
			walk(f.Type)
		}
	}
	walk(root)
	return out
}

// visibleFields are the fields encoding/json writes, embedded structs'
// fields promoted.
func visibleFields(ty reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for _, f := range reflect.VisibleFields(ty) {
		if f.Anonymous || !f.IsExported() || f.Tag.Get("json") == "-" {
			continue
		}
		out = append(out, f)
	}
	return out
}

func jsonFields(ty reflect.Type) []string {
	var out []string
	for _, f := range visibleFields(ty) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
