package demo

import (
	"fmt"
	"html"
	"strings"
	"time"
)

// ReplyStyle writes a member's reply to a ballot the way one kind of mail
// client does. The demo uses them to show ballotd reading real-world
// replies; the shapes follow the corpus's Gmail, Outlook, Apple Mail and
// webmail samples.
type ReplyStyle struct {
	Name  string
	Write func(r ReplyInput) string
}

// ReplyInput is what a reply is built from.
type ReplyInput struct {
	FromName, From   string
	To               string // the ballot's Reply-To
	Subject          string // the ballot's subject
	InReplyTo        string // the ballot's Message-ID, with <>
	MessageID        string // the reply's own, with <>
	Answer           string // what the member writes
	BallotText       string // the ballot's text, quoted back
	BallotFrom, Sent string
}

func header(r ReplyInput, extra string) string {
	return fmt.Sprintf("From: %s <%s>\r\nTo: %s\r\nSubject: Re: %s\r\nDate: %s\r\nMessage-ID: %s\r\nIn-Reply-To: %s\r\nReferences: %s\r\nMIME-Version: 1.0\r\n%s",
		r.FromName, r.From, r.To, r.Subject, time.Now().Format(time.RFC1123Z), r.MessageID, r.InReplyTo, r.InReplyTo, extra)
}

func quoteLines(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(prefix+l, " ")
	}
	return strings.Join(lines, "\r\n")
}

func crlfText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}

var ReplyStyles = []ReplyStyle{
	{"iPhone, top-posted", func(r ReplyInput) string {
		return header(r, "Content-Type: text/plain; charset=utf-8\r\n\r\n") + crlfText(r.Answer+"\n\nSent from my iPhone\n\n") +
			fmt.Sprintf("> On %s, %s wrote:\r\n> \r\n", r.Sent, r.BallotFrom) + quoteLines(r.BallotText, "> ") + "\r\n"
	}},
	{"Gmail, text and HTML", func(r ReplyInput) string {
		b := "=_gmail_demo"
		quoteHTML := strings.ReplaceAll(html.EscapeString(r.BallotText), "\n", "<br>\r\n")
		return header(r, "Content-Type: multipart/alternative; boundary=\""+b+"\"\r\n\r\n") +
			"--" + b + "\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n" + crlfText(r.Answer) + "\r\n\r\n" +
			fmt.Sprintf("On %s %s wrote:\r\n", r.Sent, r.BallotFrom) + quoteLines(r.BallotText, "> ") + "\r\n\r\n" +
			"--" + b + "\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n" +
			"<div dir=\"ltr\">" + html.EscapeString(r.Answer) + "</div><br><div class=\"gmail_quote\"><div dir=\"ltr\" class=\"gmail_attr\">On " +
			html.EscapeString(r.Sent+" "+r.BallotFrom) + " wrote:<br></div><blockquote class=\"gmail_quote\" style=\"margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex\">" +
			quoteHTML + "</blockquote></div>\r\n--" + b + "--\r\n"
	}},
	{"Outlook, unquoted header block", func(r ReplyInput) string {
		return header(r, "Content-Type: text/plain; charset=\"us-ascii\"\r\nX-Mailer: Microsoft Outlook 16.0\r\nThread-Index: AdmDemo==\r\n\r\n") +
			crlfText(r.Answer+"\n\n________________________________\nFrom: "+r.BallotFrom+"\nSent: "+r.Sent+"\nTo: "+r.FromName+" <"+r.From+">\nSubject: "+r.Subject+"\n\n"+r.BallotText) + "\r\n"
	}},
	{"webmail, HTML only", func(r ReplyInput) string {
		return header(r, "Content-Type: text/html; charset=utf-8\r\n\r\n") +
			"<html><body><div>" + html.EscapeString(r.Answer) + "</div><div><br></div>" +
			"<div id=\"divRplyFwdMsg\" dir=\"ltr\"><hr style=\"display:inline-block;width:98%\"><b>From:</b> " + html.EscapeString(r.BallotFrom) +
			"<br><b>Sent:</b> " + html.EscapeString(r.Sent) + "<br><b>Subject:</b> " + html.EscapeString(r.Subject) + "</div>" +
			"<div>" + strings.ReplaceAll(html.EscapeString(r.BallotText), "\n", "<br>\r\n") + "</div></body></html>\r\n"
	}},
	{"Thunderbird, bottom-posted", func(r ReplyInput) string {
		return header(r, "Content-Type: text/plain; charset=UTF-8; format=flowed\r\nUser-Agent: Mozilla Thunderbird\r\n\r\n") +
			fmt.Sprintf("On %s, %s wrote:\r\n", r.Sent, r.BallotFrom) + quoteLines(firstLines(r.BallotText, 6), "> ") + "\r\n\r\n" + crlfText(r.Answer) + "\r\n"
	}},
}

// outOfOffice is an auto-responder's answer to a ballot (RFC 3834).
func outOfOffice(r ReplyInput) string {
	return fmt.Sprintf("From: %s <%s>\r\nTo: %s\r\nSubject: Automatic reply: %s\r\nDate: %s\r\nMessage-ID: %s\r\nAuto-Submitted: auto-replied\r\nX-Auto-Response-Suppress: All\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nI am out of the office until Monday with limited access to email.\r\n",
		r.FromName, r.From, r.To, r.Subject, time.Now().Format(time.RFC1123Z), r.MessageID)
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
