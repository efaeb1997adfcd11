package config

import (
	"reflect"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
)

// Marshal renders c as a configuration file: every key, durations as Go
// duration strings, so that Load reads it back to c. Tests and tools build
// configurations as typed values and write them with it.
func Marshal(c Config) ([]byte, error) {
	return yaml.Marshal(toYAML(reflect.ValueOf(c)))
}

// toYAML turns a configuration value into YAML nodes keyed by the
// mapstructure tags, in declaration order.
func toYAML(v reflect.Value) any {
	switch {
	case v.Type() == reflect.TypeOf(time.Duration(0)):
		return v.Interface().(time.Duration).String()
	case v.Kind() == reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i < v.NumField(); i++ {
			tag := v.Type().Field(i).Tag.Get("mapstructure")
			if tag == "" {
				continue
			}
			val := &yaml.Node{}
			if err := val.Encode(toYAML(v.Field(i))); err != nil {
				panic(err) // only plain values reach here
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: tag}, val)
		}
		return n
	case v.Kind() == reflect.Slice:
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toYAML(v.Index(i))
		}
		return out
	case v.Kind() == reflect.Map:
		// Node ids in order, quoted: YAML keys, not numbers.
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range keys {
			val := &yaml.Node{}
			if err := val.Encode(v.MapIndex(k).Interface()); err != nil {
				panic(err)
			}
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.DoubleQuotedStyle, Value: k.String()}, val)
		}
		return n
	case v.Kind() == reflect.String:
		return v.String()
	case v.Kind() == reflect.Bool:
		return v.Bool()
	case v.Kind() == reflect.Int:
		return int(v.Int())
	}
	return v.Interface()
}
