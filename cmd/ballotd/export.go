package main

import (
	"context"
	"fmt"

	"github.com/ballotd/ballotd/internal/report"
)

func cmdExport(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "endorsements" {
		return usageError{"export: want export endorsements --format json|csv|html [--wave W]"}
	}
	fs := flags("export endorsements")
	format := fs.String("format", "json", "json, csv or html")
	wave := fs.String("wave", "", "only this wave")
	if rest, err := parseFlags(fs, args[1:]); err != nil {
		return err
	} else if len(rest) != 0 {
		return usageError{fmt.Sprintf("export endorsements: unexpected %q", rest[0])}
	}
	if *format != "json" && *format != "csv" && *format != "html" {
		return usageError{fmt.Sprintf("export endorsements: --format %q: want json, csv or html", *format)}
	}
	st, cfg, err := openStore(ctx, e)
	if err != nil {
		return err
	}
	defer st.Close()
	l, err := st.Endorsements(ctx, *wave)
	if err != nil {
		return err
	}
	switch *format {
	case "csv":
		return report.EndorsementsCSV(e.stdout, l)
	case "html":
		return report.Page(e.stdout, l, cfg.Org)
	}
	return printJSON(e.stdout, l)
}
