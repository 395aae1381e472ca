package pshared

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestJSONFieldsDocumented: every field of ls and inspect's JSON is named in
// the README's table, so that the documented names and the output cannot
// drift apart.
func TestJSONFieldsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var check func(reflect.Type)
	check = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeOf(jsonSegment{}).PkgPath() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && !strings.Contains(string(readme), "`"+name+"`") {
				t.Errorf("JSON field %q (%s.%s) is not in the README's table", name, typ.Name(), f.Name)
			}
			check(f.Type)
		}
	}
	check(reflect.TypeOf(jsonSegment{}))
	if len(seen) < 5 {
		t.Fatalf("checked only %d types", len(seen))
	}
}
