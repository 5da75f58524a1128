// gitops-health prints how GitOps tools judge Kubernetes objects: the kstatus verdict (the
// library Flux and kpt read) and, given -argocd-lua FILE, the result of an Argo CD
// health script, run in gopher-lua as Argo CD runs it. It reads one object or a List as JSON
// on stdin, as `kubectl get -o json` prints them, and writes one JSON line per object:
// {"name": ..., "kstatus": {"status": ..., "message": ...}, "argocd": {...}}.
// The tests use it to check that live Recordings read right.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type report struct {
	Name    string   `json:"name"`
	Kstatus verdict  `json:"kstatus"`
	ArgoCD  *verdict `json:"argocd,omitempty"`
}

func main() {
	script := flag.String("argocd-lua", "", "an Argo CD health.lua to run on each object")
	flag.Parse()
	raw, err := io.ReadAll(os.Stdin)
	check(err)
	var obj unstructured.Unstructured
	check(obj.UnmarshalJSON(raw))
	items := []unstructured.Unstructured{obj}
	if obj.IsList() {
		list, err := obj.ToList()
		check(err)
		items = list.Items
	}
	out := json.NewEncoder(os.Stdout)
	for i := range items {
		res, err := status.Compute(&items[i])
		check(err)
		r := report{Name: items[i].GetName(), Kstatus: verdict{res.Status.String(), res.Message}}
		if *script != "" {
			health, err := argoHealth(*script, items[i].Object)
			check(err)
			r.ArgoCD = &health
		}
		check(out.Encode(r))
	}
}

// argoHealth runs a health script the way Argo CD's util/lua does: only the package, base and
// table libraries open (Argo CD adds a cut-down os), the object as the global `obj`, and a
// returned table with `status` and `message`.
func argoHealth(path string, obj map[string]any) (verdict, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, open := range []lua.LGFunction{lua.OpenPackage, lua.OpenBase, lua.OpenTable} {
		l.Push(l.NewFunction(open))
		l.Call(0, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoFile(path); err != nil {
		return verdict{}, err
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return verdict{}, fmt.Errorf("%s returned %s, not a table", path, l.Get(-1).Type())
	}
	return verdict{lua.LVAsString(table.RawGetString("status")), lua.LVAsString(table.RawGetString("message"))}, nil
}

func toLua(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case map[string]any:
		table := l.NewTable()
		for key, item := range v {
			table.RawSetString(key, toLua(l, item))
		}
		return table
	case []any:
		table := l.NewTable()
		for _, item := range v {
			table.Append(toLua(l, item))
		}
		return table
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	default:
		return lua.LNil
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitops-health:", err)
		os.Exit(1)
	}
}
