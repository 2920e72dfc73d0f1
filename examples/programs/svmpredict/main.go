// Command svmpredict is a reactor program (build with -buildmode=c-shared): its
// initialisation loads the model from the input "model" once, then the sandbox calls it
// once per query on the same warm instance. A query is CSV with a header row or JSON
// {"rows":[{feature: value}]}; the answer is JSON {"predictions":[{"label","score"}]}.
package main

import (
	"bytes"
	"errors"

	"github.com/styx-tee/styx/guest"
	"github.com/styx-tee/styx/internal/ml"
)

var (
	model   *ml.Model
	loadErr error
)

func init() {
	model, loadErr = load()
	if loadErr != nil {
		guest.Logf("svmpredict: loading the model: %v", loadErr)
	}
	guest.Serve(answer)
}

func load() (*ml.Model, error) {
	r, err := guest.Open("model")
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return ml.ReadModel(r)
}

func answer(req []byte) ([]byte, error) {
	if model == nil {
		return nil, errors.Join(errors.New("no model"), loadErr)
	}
	if t := bytes.TrimSpace(req); len(t) > 0 && t[0] == '{' {
		return model.Answer(req) // JSON: parsed in the guest
	}
	t, err := guest.OpenQueryTable() // CSV: parsed natively by the host
	if err != nil {
		return nil, err
	}
	values, err := t.ReadAll()
	if err != nil {
		return nil, err
	}
	return model.AnswerTable(t.Header(), values)
}

func main() {}
