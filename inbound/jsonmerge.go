package inbound

import (
	"encoding/json"
	"fmt"
)

// marshalWith encodes v (a struct) as a JSON object with one more member
// key: value, left out when value is "".
func marshalWith(v any, key, value string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if value == "" {
		return b, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("answer data: %w", err)
	}
	vb, _ := json.Marshal(value)
	obj[key] = vb
	return json.Marshal(obj)
}
