// Package testconfig writes a typed config.Config as the YAML file the
// scram-proxy binary reads, so the integration tests and the benchmark build
// their configurations in Go (a misspelt field does not compile) instead of
// from text templates.
package testconfig

import (
	"os"
	"reflect"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scram-proxy/scram-proxy/internal/config"
)

var durationType = reflect.TypeOf(time.Duration(0))

// YAML renders c as a configuration file holding every key whose value
// differs from config.Defaults(), under the names config.Load reads (the
// mapstructure tags), durations written as Go durations ("100ms").
func YAML(c config.Config) ([]byte, error) {
	return yaml.Marshal(diff(reflect.ValueOf(c), reflect.ValueOf(config.Defaults())))
}

// Write writes c to path (mode 0600) as YAML renders it.
func Write(path string, c config.Config) error {
	b, err := YAML(c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// diff returns the fields of struct v that differ from def, by key.
func diff(v, def reflect.Value) map[string]any {
	out := map[string]any{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		name := f.Tag.Get("mapstructure")
		if name == "" {
			continue
		}
		fv, dv := v.Field(i), def.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type != durationType {
			if sub := diff(fv, dv); len(sub) > 0 {
				out[name] = sub
			}
			continue
		}
		if !reflect.DeepEqual(fv.Interface(), dv.Interface()) {
			out[name] = value(fv)
		}
	}
	return out
}

// value is one key's value as YAML should show it.
func value(v reflect.Value) any {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		list := make([]any, v.Len())
		for i := range list {
			list[i] = diff(v.Index(i), reflect.Zero(v.Type().Elem()))
		}
		return list
	}
	return v.Interface()
}
