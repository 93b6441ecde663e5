package main

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// HostStatus is one row of the status page and of /status.json.
type HostStatus struct {
	Hostname string `json:"hostname"`
	MAC      string `json:"mac"`
	Profile  string `json:"profile,omitempty"`
	OS       string `json:"os,omitempty"`
	IP       string `json:"ip,omitempty"`
	// Listed is false for a MAC that is not in the inventory.
	Listed bool `json:"listed"`
	// Next is what the host's next network boot gets, and Why says why.
	Next Action `json:"next"`
	Why  string `json:"why"`
	// State is the persistent install-once state.
	State InstallState `json:"state"`
	// Stage is the latest step seen, since when, and its detail.
	Stage  Stage      `json:"stage,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
	Detail string     `json:"detail,omitempty"`
	// Timeline is the latest time each stage was reached, in chain order.
	Timeline []StageTime `json:"timeline,omitempty"`
	// Report is the installer's report of the current install, Boot the
	// installed system's first-boot report.
	Report *Report `json:"report,omitempty"`
	Boot   *Report `json:"boot,omitempty"`
	// Overdue is set when the host installed more than the boot timeout
	// ago and its first boot has not reported.
	Overdue bool `json:"overdue,omitempty"`
	// Power is the host's power as its BMC last said, with fleet's last
	// action and the BMC's last error; nil without -power or a bmc.
	Power *PowerStatus `json:"power,omitempty"`
}

// StageTime is when a stage was last reached.
type StageTime struct {
	Stage Stage     `json:"stage"`
	At    time.Time `json:"at"`
}

// Status is the whole fleet at one moment.
type Status struct {
	Now    time.Time      `json:"now"`
	Counts map[string]int `json:"counts"` // hosts per stage shown
	Hosts  []HostStatus   `json:"hosts"`
}

var stageOrder = []Stage{
	StageDHCP, StageBootloader, StageMenu, StageKernel, StageInitrd,
	StageAnswer, StageInstalling, StageInstalled, StageBooted, StageFailed,
}

// status gathers the inventory, the state file and the live steps.
func (f *fleet) status() Status {
	steps := f.steps.all()
	var rows []HostStatus
	seen := map[string]bool{}
	add := func(mac net.HardwareAddr, listed bool) {
		key := mac.String()
		seen[key] = true
		d := f.gate.Decide(mac)
		row := HostStatus{MAC: key, Hostname: f.hostname(mac), Listed: listed, Next: d.Action, Why: d.Why, State: Pending}
		if h := f.inv.host(mac); h != nil {
			row.Profile = h.Profile
			if pm := f.profiles[h.Profile]; pm != nil {
				row.OS = pm.osID
			}
		}
		row.Power = f.power.get(key)
		rec, ok := f.gate.store.Get(key)
		if ok {
			row.State, row.Report, row.Boot, row.Overdue = rec.State, rec.Report, rec.Boot, f.gate.Overdue(rec)
		}
		if ph, ok := steps[key]; ok {
			if ph.IP.IsValid() {
				row.IP = ph.IP.String()
			}
			last := map[Stage]time.Time{}
			for _, s := range ph.Steps {
				last[s.Stage] = s.At
			}
			for _, st := range stageOrder {
				if at, ok := last[st]; ok {
					row.Timeline = append(row.Timeline, StageTime{Stage: st, At: at})
				}
			}
			if l := ph.Last(); !l.At.IsZero() {
				at := l.At
				row.Stage, row.Since, row.Detail = l.Stage, &at, l.Detail
			}
		}
		if ln, has := f.installLog.get(key); has && row.Stage == StageInstalling && row.Since != nil && !ln.At.Before(*row.Since) {
			row.Detail = "syslog: " + ln.Text // the install's latest line
		}
		if ok && (rec.State == Installed || rec.State == Booted || rec.State == Failed) && (row.Since == nil || rec.Changed.After(*row.Since)) {
			// After a restart the live steps are gone; the state is not.
			at := rec.Changed
			row.Stage, row.Since = Stage(rec.State), &at
		}
		if row.Stage == "" && ok && rec.State == Installing {
			at := rec.Changed
			row.Stage, row.Since = StageInstalling, &at
		}
		rows = append(rows, row)
	}
	for _, h := range f.inv.Hosts {
		add(h.mac, true)
	}
	var extra []string
	for mac := range steps {
		if !seen[mac] {
			extra = append(extra, mac)
		}
	}
	for _, r := range f.gate.store.All() {
		if !seen[r.MAC] && steps[r.MAC].MAC == "" {
			extra = append(extra, r.MAC)
		}
	}
	sort.Strings(extra)
	for _, m := range extra {
		if hw, err := net.ParseMAC(m); err == nil && !seen[m] {
			add(hw, false)
		}
	}
	counts := map[string]int{}
	for _, r := range rows {
		counts[r.StageName()]++
	}
	return Status{Now: time.Now(), Counts: counts, Hosts: rows}
}

// StageName is the stage shown, "waiting" before any.
func (h HostStatus) StageName() string {
	if h.Stage == "" {
		return "waiting"
	}
	return string(h.Stage)
}

// FailedChecks lists the checks of the reports that did not pass, the
// first boot's named as such.
func (h HostStatus) FailedChecks() []string {
	var out []string
	if h.Report != nil {
		for _, c := range h.Report.Checks {
			if !c.OK {
				out = append(out, c.Name)
			}
		}
	}
	if h.Boot != nil {
		for _, c := range h.Boot.Checks {
			if !c.OK {
				out = append(out, "at boot: "+c.Name)
			}
		}
	}
	return out
}

// OverdueNote says what an overdue host lacks, for people.
func (h HostStatus) OverdueNote() string {
	if !h.Overdue {
		return ""
	}
	return "no booted report yet"
}

func (f *fleet) serveStatusJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(f.status())
}

func (f *fleet) serveStatusHTML(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := statusPage.Execute(w, f.status()); err != nil {
		f.log.Debug("status page", "error", err)
	}
}

// ago formats how long ago t was, for people.
func ago(now time.Time, t *time.Time) string {
	if t == nil {
		return ""
	}
	d := now.Sub(*t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago":   ago,
	"clock": func(t time.Time) string { return t.Format("15:04:05") },
	"join":  func(s []string) string { return strings.Join(s, ", ") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="3">
<title>pxekit fleet</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .3em}
.counts span{display:inline-block;margin-right:1em}
table{border-collapse:collapse;margin-top:1em;width:100%}
th,td{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top;font-size:.92em}
th{background:#f4f4f4}
td.mono{font-family:ui-monospace,monospace}
.stage{font-weight:600;padding:.1em .5em;border-radius:.3em;background:#eee}
.s-done,.s-booted{background:#c8efc8}.s-installed{background:#e2f5d0}.overdue{color:#a60;font-weight:600}.s-failed{background:#f6c4c4}.s-installing,.s-answer{background:#fde8b0}
.s-kernel,.s-initrd,.s-menu,.s-bootloader,.s-dhcp{background:#d6e6fb}
.timeline{color:#555;font-size:.85em}
.failed{color:#a00}
</style></head>
<body>
<h1>pxekit fleet</h1>
<div class="counts">{{range $k, $v := .Counts}}<span>{{$k}}: <b>{{$v}}</b></span>{{end}}</div>
<table id="hosts">
<thead><tr><th>Host</th><th>MAC</th><th>Profile</th><th>IP</th><th>Stage</th><th>Since</th><th>Install state</th><th>Next boot</th><th>Power</th><th>Timeline</th><th>Checks</th></tr></thead>
<tbody>
{{- $now := .Now}}
{{range .Hosts}}<tr data-mac="{{.MAC}}">
<td>{{.Hostname}}{{if not .Listed}} <i>(not listed)</i>{{end}}</td>
<td class="mono">{{.MAC}}</td>
<td>{{.Profile}}{{if .OS}} ({{.OS}}){{end}}</td>
<td class="mono">{{.IP}}</td>
<td><span class="stage s-{{.StageName}}">{{.StageName}}</span> <span class="timeline">{{.Detail}}</span></td>
<td>{{ago $now .Since}}</td>
<td>{{.State}}{{with .OverdueNote}} <span class="overdue">{{.}}</span>{{end}}</td>
<td title="{{.Why}}">{{.Next}}</td>
<td>{{with .Power}}{{.State}}{{with .Action}} · {{.}}{{end}}{{with .Note}} <i>{{.}}</i>{{end}}{{with .Error}} <span class="failed">{{.}}</span>{{end}}{{end}}</td>
<td class="timeline">{{range $i, $s := .Timeline}}{{if $i}} → {{end}}{{$s.Stage}} {{clock $s.At}}{{end}}</td>
<td>{{with .Report}}{{len .Checks}} run{{end}}{{with .Boot}}, {{len .Checks}} at boot{{end}}{{with .FailedChecks}}; <span class="failed">failed: {{join .}}</span>{{end}}</td>
</tr>
{{end}}</tbody></table>
</body></html>
`))

// writeTable prints the status as a plain table, for the terminal.
func writeTable(w io.Writer, s Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// The power columns only when fleet drives BMCs (-power): a rack
	// without them keeps its table narrow.
	powered := slices.ContainsFunc(s.Hosts, func(h HostStatus) bool { return h.Power != nil })
	if powered {
		fmt.Fprintln(tw, "HOST\tMAC\tPROFILE\tIP\tSTAGE\tSINCE\tSTATE\tNEXT BOOT\tPOWER\tLAST ACTION\tBMC ERROR\tDETAIL")
	} else {
		fmt.Fprintln(tw, "HOST\tMAC\tPROFILE\tIP\tSTAGE\tSINCE\tSTATE\tNEXT BOOT\tDETAIL")
	}
	for _, h := range s.Hosts {
		detail := h.Detail
		if fc := h.FailedChecks(); len(fc) > 0 {
			detail = "failed: " + strings.Join(fc, ", ")
		}
		state := string(h.State)
		if h.Overdue {
			state += " (overdue)"
			detail = h.OverdueNote()
		}
		if r := []rune(detail); len(r) > 40 {
			detail = string(r[:37]) + "..." // whole characters: check names can be in any script
		}
		pstate, paction, perr := "", "", ""
		if p := h.Power; p != nil {
			pstate, paction, perr = string(p.State), p.Action, p.Error
			if perr == "" && p.Note != "" {
				perr = "note: " + p.Note
			}
		}
		if !powered {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(h.Hostname), h.MAC, h.Profile, h.IP,
				h.StageName(), ago(s.Now, h.Since), state, h.Next, printable(detail))
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", printable(h.Hostname), h.MAC, h.Profile, h.IP,
			h.StageName(), ago(s.Now, h.Since), state, h.Next, pstate, printable(clipRunes(paction, 24)), printable(clipRunes(perr, 40)), printable(detail))
	}
	tw.Flush()
}

// clipRunes shortens s to n characters, "..." included.
func clipRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-3]) + "..."
	}
	return s
}

// printable drops control characters: host names and details come from
// installers' reports and logs, and must not drive the operator's terminal.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}
