package power

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeBMC is a Redfish service for the tests. Its resources are
// HAND-WRITTEN for these tests, following the Redfish schemas
// (ServiceRoot v1, SessionService/Session v1, ComputerSystemCollection,
// ComputerSystem v1 with Boot and the ComputerSystem.Reset action,
// ActionInfo); they are not recordings of real BMCs. It applies resets
// and Boot PATCHes as the specification describes: Reset changes
// PowerState, PATCH stores the override properties, a boot consumes a
// "Once" override (Enabled back to Disabled), and it records every
// request so that the tests assert exactly what the client sent.
type fakeBMC struct {
	mu sync.Mutex

	user, pass string
	// Variants.
	noSessionService bool     // no SessionService: basic authentication
	systems          []string // system Ids; default one, "437XR1138R2"
	resetAllowed     []string // default On, ForceOff, GracefulShutdown, GracefulRestart, ForceRestart, Nmi, ForceOn, PushPowerButton
	actionInfo       bool     // reset types through @Redfish.ActionInfo
	rejectMode       bool     // PATCH naming BootSourceOverrideMode: 400
	rejectBoot       bool     // every Boot PATCH: 400
	ignoreBoot       bool     // PATCH answered 204 but nothing stored
	requireIfMatch   bool     // PATCH without the current ETag: 428/412
	busy             int      // answer this many requests 503 first
	expireSessions   bool     // forget every session after login's next request
	hostile          string   // "member-host", "huge", "redirect"

	// State, per system Id.
	power    map[string]string
	boot     map[string]map[string]string
	etag     int
	lastBoot map[string]string // what the system last booted from, "Pxe/UEFI"
	tokens   map[string]string // token -> session path
	nextSess int

	reqs []string // "METHOD path body", body compacted
	hdrs []http.Header
}

func newFakeBMC() *fakeBMC {
	return &fakeBMC{user: "admin", pass: "fake-bmc-pw", tokens: map[string]string{},
		power: map[string]string{}, boot: map[string]map[string]string{}, lastBoot: map[string]string{}}
}

func (f *fakeBMC) ids() []string {
	if len(f.systems) == 0 {
		return []string{"437XR1138R2"}
	}
	return f.systems
}

func (f *fakeBMC) resetTypes() []string {
	if f.resetAllowed != nil {
		return f.resetAllowed
	}
	return []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "Nmi", "ForceOn", "PushPowerButton"}
}

// requests returns the recorded requests and clears them.
func (f *fakeBMC) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reqs
	f.reqs = nil
	return r
}

func (f *fakeBMC) headers() []http.Header {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hdrs)
}

func (f *fakeBMC) state(id string) (power string, boot map[string]string, last string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.power[id], f.boot[id], f.lastBoot[id]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// rfErr is a Redfish error response with one message.
func rfErr(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": "Base.1.8.GeneralError", "message": "A general error has occurred. See ExtendedInfo for more information.",
		"@Message.ExtendedInfo": []map[string]any{{"@odata.type": "#Message.v1_1_1.Message", "MessageId": id, "Message": msg, "Severity": "Warning"}},
	}})
}

func (f *fakeBMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	f.mu.Lock()
	defer f.mu.Unlock()
	line := r.Method + " " + r.URL.Path
	if len(body) > 0 {
		line += " " + string(body)
	}
	f.reqs = append(f.reqs, line)
	f.hdrs = append(f.hdrs, r.Header.Clone())
	if f.busy > 0 {
		f.busy--
		w.Header().Set("Retry-After", "1")
		rfErr(w, http.StatusServiceUnavailable, "Base.1.8.ServiceTemporarilyUnavailable", "The service is temporarily unavailable.")
		return
	}
	p := r.URL.Path
	if p == "/redfish/v1" || p == "/redfish/v1/" {
		if r.Method != http.MethodGet {
			rfErr(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "Operation not allowed.")
			return
		}
		f.serviceRoot(w)
		return
	}
	if p == "/redfish/v1/SessionService/Sessions" && r.Method == http.MethodPost && !f.noSessionService {
		f.login(w, body)
		return
	}
	if !f.authorized(r) {
		rfErr(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "There is no valid session established with the implementation.")
		return
	}
	if f.expireSessions {
		clear(f.tokens)
		f.expireSessions = false
	}
	switch {
	case strings.HasPrefix(p, "/redfish/v1/SessionService/Sessions/") && r.Method == http.MethodDelete:
		for tok, sp := range f.tokens {
			if sp == p {
				delete(f.tokens, tok)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		rfErr(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI was not found.")
	case p == "/redfish/v1/Systems" && r.Method == http.MethodGet:
		f.collection(w)
	case strings.HasPrefix(p, "/redfish/v1/Systems/"):
		f.system(w, r, strings.Split(strings.TrimPrefix(p, "/redfish/v1/Systems/"), "/"), body)
	default:
		rfErr(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI was not found.")
	}
}

func (f *fakeBMC) serviceRoot(w http.ResponseWriter) {
	root := map[string]any{
		"@odata.type":    "#ServiceRoot.v1_5_0.ServiceRoot",
		"@odata.id":      "/redfish/v1/",
		"Id":             "RootService",
		"Name":           "Root Service",
		"RedfishVersion": "1.6.0",
		"UUID":           "92384634-2938-2342-8820-489239905423",
		"Systems":        map[string]string{"@odata.id": "/redfish/v1/Systems"},
		"Links":          map[string]any{},
	}
	if !f.noSessionService {
		root["SessionService"] = map[string]string{"@odata.id": "/redfish/v1/SessionService"}
		root["Links"] = map[string]any{"Sessions": map[string]string{"@odata.id": "/redfish/v1/SessionService/Sessions"}}
	}
	writeJSON(w, http.StatusOK, root)
}

func (f *fakeBMC) login(w http.ResponseWriter, body []byte) {
	var cred struct{ UserName, Password string }
	if json.Unmarshal(body, &cred) != nil || cred.UserName == "" {
		rfErr(w, http.StatusBadRequest, "Base.1.8.PropertyMissing", "The property UserName is a required property and must be included in the request.")
		return
	}
	if cred.UserName != f.user || cred.Password != f.pass {
		rfErr(w, http.StatusUnauthorized, "Base.1.8.ResourceAtUriUnauthorized", "While accessing the resource at /redfish/v1/SessionService/Sessions, the service received an authorization error.")
		return
	}
	f.nextSess++
	tok := fmt.Sprintf("tok-%d-%x", f.nextSess, f.nextSess*7919)
	sp := "/redfish/v1/SessionService/Sessions/" + strconv.Itoa(f.nextSess)
	f.tokens[tok] = sp
	w.Header().Set("X-Auth-Token", tok)
	w.Header().Set("Location", sp)
	writeJSON(w, http.StatusCreated, map[string]any{
		"@odata.type": "#Session.v1_3_0.Session", "@odata.id": sp, "Id": strconv.Itoa(f.nextSess),
		"Name": "User Session", "UserName": cred.UserName,
	})
}

func (f *fakeBMC) authorized(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		_, ok := f.tokens[tok]
		return ok
	}
	u, p, ok := r.BasicAuth()
	return ok && u == f.user && p == f.pass
}

func (f *fakeBMC) collection(w http.ResponseWriter) {
	var members []map[string]string
	for _, id := range f.ids() {
		m := "/redfish/v1/Systems/" + id
		if f.hostile == "member-host" {
			m = "https://198.51.100.7/redfish/v1/Systems/" + id
		}
		members = append(members, map[string]string{"@odata.id": m})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.type": "#ComputerSystemCollection.ComputerSystemCollection", "@odata.id": "/redfish/v1/Systems",
		"Name": "Computer System Collection", "Members@odata.count": len(members), "Members": members,
	})
}

var bootTargets = []string{"None", "Pxe", "Floppy", "Cd", "Usb", "Hdd", "BiosSetup", "Utilities", "Diags", "UefiTarget", "UefiHttp"}

func (f *fakeBMC) system(w http.ResponseWriter, r *http.Request, parts []string, body []byte) {
	id := parts[0]
	if !slices.Contains(f.ids(), id) {
		rfErr(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI was not found.")
		return
	}
	sp := "/redfish/v1/Systems/" + id
	if f.power[id] == "" {
		f.power[id] = "Off"
	}
	if f.boot[id] == nil {
		f.boot[id] = map[string]string{"BootSourceOverrideTarget": "None", "BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideMode": "Legacy"}
	}
	etag := fmt.Sprintf(`W/"%d"`, f.etag)
	switch {
	case len(parts) == 1 && r.Method == http.MethodGet:
		if f.hostile == "redirect" {
			w.Header().Set("Location", "https://198.51.100.7"+sp)
			w.WriteHeader(http.StatusFound)
			return
		}
		if f.hostile == "huge" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"Id":"` + strings.Repeat("x", MaxRedfishBody+10) + `"}`))
			return
		}
		reset := map[string]any{"target": sp + "/Actions/ComputerSystem.Reset"}
		if f.actionInfo {
			reset["@Redfish.ActionInfo"] = sp + "/ResetActionInfo"
		} else {
			reset["ResetType@Redfish.AllowableValues"] = f.resetTypes()
		}
		boot := map[string]any{"BootSourceOverrideTarget@Redfish.AllowableValues": bootTargets,
			"BootSourceOverrideMode@Redfish.AllowableValues": []string{"Legacy", "UEFI"}}
		for k, v := range f.boot[id] {
			boot[k] = v
		}
		w.Header().Set("ETag", etag)
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem", "@odata.id": sp, "@odata.etag": etag,
			"Id": id, "Name": "Web Front End node", "SystemType": "Physical", "Manufacturer": "Contoso",
			"Model": "3500RX", "SerialNumber": "437XR1138R2", "PowerState": f.power[id],
			"Status":  map[string]string{"State": "Enabled", "Health": "OK"},
			"Boot":    boot,
			"Actions": map[string]any{"#ComputerSystem.Reset": reset},
		})
	case len(parts) == 2 && parts[1] == "ResetActionInfo" && r.Method == http.MethodGet && f.actionInfo:
		writeJSON(w, http.StatusOK, map[string]any{
			"@odata.type": "#ActionInfo.v1_1_2.ActionInfo", "@odata.id": sp + "/ResetActionInfo", "Id": "ResetActionInfo",
			"Name": "Reset Action Info",
			"Parameters": []map[string]any{{"Name": "ResetType", "Required": true, "DataType": "String",
				"AllowableValues": f.resetTypes()}},
		})
	case len(parts) == 1 && r.Method == http.MethodPatch:
		f.patch(w, r, id, etag, body)
	case len(parts) == 3 && parts[1] == "Actions" && parts[2] == "ComputerSystem.Reset" && r.Method == http.MethodPost:
		f.reset(w, id, body)
	default:
		rfErr(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "Operation not allowed.")
	}
}

func (f *fakeBMC) patch(w http.ResponseWriter, r *http.Request, id, etag string, body []byte) {
	if f.requireIfMatch {
		switch im := r.Header.Get("If-Match"); {
		case im == "":
			rfErr(w, http.StatusPreconditionRequired, "Base.1.8.PreconditionRequired", "A precondition header or annotation is required to change the resource.")
			return
		case im != etag:
			rfErr(w, http.StatusPreconditionFailed, "Base.1.8.PreconditionFailed", "The ETag supplied did not match the ETag required to change this resource.")
			return
		}
	}
	var req struct {
		Boot map[string]string
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Boot == nil {
		rfErr(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "The request body submitted was malformed JSON and could not be parsed by the receiving service.")
		return
	}
	allowed := map[string][]string{
		"BootSourceOverrideTarget":  bootTargets,
		"BootSourceOverrideEnabled": {"Disabled", "Once", "Continuous"},
		"BootSourceOverrideMode":    {"Legacy", "UEFI"},
	}
	for k, v := range req.Boot {
		vals, ok := allowed[k]
		if !ok {
			rfErr(w, http.StatusBadRequest, "Base.1.8.PropertyUnknown", "The property "+k+" is not in the list of valid properties for the resource.")
			return
		}
		if !slices.Contains(vals, v) {
			rfErr(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", "The value "+v+" for the property "+k+" is not in the list of acceptable values.")
			return
		}
	}
	if f.rejectBoot || (f.rejectMode && req.Boot["BootSourceOverrideMode"] != "") {
		name := "BootSourceOverrideTarget"
		if f.rejectMode {
			name = "BootSourceOverrideMode"
		}
		rfErr(w, http.StatusBadRequest, "Base.1.8.PropertyNotWritable", "The property "+name+" is a read only property and cannot be assigned a value.")
		return
	}
	if !f.ignoreBoot {
		for k, v := range req.Boot {
			f.boot[id][k] = v
		}
		f.etag++
	}
	w.WriteHeader(http.StatusNoContent)
}

// boot models the firmware reading the override as the system starts.
func (f *fakeBMC) bootNow(id string) {
	b := f.boot[id]
	from := "Hdd"
	if b["BootSourceOverrideEnabled"] != "Disabled" && b["BootSourceOverrideTarget"] != "None" {
		from = b["BootSourceOverrideTarget"] + "/" + b["BootSourceOverrideMode"]
	}
	if b["BootSourceOverrideEnabled"] == "Once" {
		b["BootSourceOverrideEnabled"] = "Disabled"
		f.etag++
	}
	f.lastBoot[id] = from
}

func (f *fakeBMC) reset(w http.ResponseWriter, id string, body []byte) {
	var req struct{ ResetType string }
	if json.Unmarshal(body, &req) != nil || req.ResetType == "" {
		rfErr(w, http.StatusBadRequest, "Base.1.8.ActionParameterMissing", "The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.")
		return
	}
	if !slices.Contains(f.resetTypes(), req.ResetType) {
		rfErr(w, http.StatusBadRequest, "Base.1.8.ActionParameterNotSupported", "The parameter ResetType for the action ComputerSystem.Reset is not supported on the target resource.")
		return
	}
	switch req.ResetType {
	case "On", "ForceOn":
		if f.power[id] != "On" {
			f.power[id] = "On"
			f.bootNow(id)
		}
	case "ForceOff", "GracefulShutdown":
		f.power[id] = "Off"
	case "ForceRestart", "GracefulRestart", "PowerCycle":
		f.power[id] = "On"
		f.bootNow(id)
	case "PushPowerButton":
		if f.power[id] == "On" {
			f.power[id] = "Off"
		} else {
			f.power[id] = "On"
			f.bootNow(id)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// startFake serves f over TLS on 127.0.0.1.
func startFake(t *testing.T, f *fakeBMC) *httptest.Server {
	t.Helper()
	ts := httptest.NewTLSServer(f)
	t.Cleanup(ts.Close)
	return ts
}
