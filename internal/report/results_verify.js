// The receipt check of the results page: the code a member types is put in
// the form it was mailed (ballots.CanonicalReceipt), hashed in the browser
// and looked up in the published hashes. Nothing is sent anywhere.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("receipt-hashes").textContent);
  var form = document.getElementById("verify-form");
  var input = document.getElementById("verify-code");
  var out = document.getElementById("verify-result");

  // canonical returns the code as mailed, "abcd-efgh-ijkl-mnop", from what
  // was typed (any case, with or without dashes, spaces or quotes), or "".
  function canonical(s) {
    s = String(s).toLowerCase().replace(/[ \t\n\r\f\v\u00a0'"\u2018\u2019\u201c\u201d\-\u2010-\u2015]/g, "");
    if (!/^[a-z2-7]{16}$/.test(s)) {
      return "";
    }
    return s.slice(0, 4) + "-" + s.slice(4, 8) + "-" + s.slice(8, 12) + "-" + s.slice(12, 16);
  }

  function bytesOf(s) {
    var b = [];
    for (var i = 0; i < s.length; i++) {
      b.push(s.charCodeAt(i) & 255); // a canonical code is ASCII
    }
    return b;
  }

  function hex(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) {
      s += (bytes[i] < 16 ? "0" : "") + bytes[i].toString(16);
    }
    return s;
  }

  // sha256 is FIPS 180-4 SHA-256 in plain JavaScript, for a browser without
  // crypto.subtle (an old one, or a page opened from a file over http).
  function sha256(bytes) {
    var K = [], H = [], n = 2, i, j;
    while (K.length < 64) {
      var prime = true;
      for (j = 2; j * j <= n; j++) {
        if (n % j === 0) { prime = false; break; }
      }
      if (prime) {
        if (H.length < 8) { H.push((Math.pow(n, 1 / 2) % 1) * 4294967296 | 0); }
        K.push((Math.pow(n, 1 / 3) % 1) * 4294967296 | 0);
      }
      n++;
    }
    var bits = bytes.length * 8, m = bytes.slice();
    m.push(0x80);
    while (m.length % 64 !== 56) { m.push(0); }
    m.push(0, 0, 0, 0, (bits >>> 24) & 255, (bits >>> 16) & 255, (bits >>> 8) & 255, bits & 255);
    function rotr(x, r) { return (x >>> r) | (x << (32 - r)); }
    var w = [];
    for (var off = 0; off < m.length; off += 64) {
      for (i = 0; i < 16; i++) {
        w[i] = (m[off + 4 * i] << 24) | (m[off + 4 * i + 1] << 16) | (m[off + 4 * i + 2] << 8) | m[off + 4 * i + 3];
      }
      for (i = 16; i < 64; i++) {
        var x = w[i - 15], y = w[i - 2];
        w[i] = (w[i - 16] + (rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3)) + w[i - 7] + (rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10))) | 0;
      }
      var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
      for (i = 0; i < 64; i++) {
        var t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      H[0] = (H[0] + a) | 0; H[1] = (H[1] + b) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
      H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
    }
    var res = [];
    for (i = 0; i < 8; i++) {
      res.push((H[i] >>> 24) & 255, (H[i] >>> 16) & 255, (H[i] >>> 8) & 255, H[i] & 255);
    }
    return hex(res);
  }

  // digest hashes with Web Crypto where the browser offers it (a secure
  // context: https, localhost or a saved file), else in plain JavaScript.
  function digest(code) {
    var bytes = bytesOf(code);
    var subtle = typeof crypto !== "undefined" && crypto && crypto.subtle;
    if (!subtle) {
      return Promise.resolve(sha256(bytes));
    }
    return subtle.digest("SHA-256", new Uint8Array(bytes)).then(function (buf) {
      return hex(Array.prototype.slice.call(new Uint8Array(buf)));
    }, function () {
      return sha256(bytes);
    });
  }

  function show(text, ok) {
    out.textContent = text;
    out.className = ok ? "found" : "missing";
  }

  function check() {
    var code = canonical(input.value);
    if (!code) {
      show("not found: a receipt code is 16 letters and digits in four groups, like abcd-efgh-ijkl-mnop. Copy it from your receipt email.", false);
      return Promise.resolve();
    }
    return digest(code).then(function (h) {
      var found = [];
      for (var i = 0; i < data.length; i++) {
        for (var j = 0; j < data[i].receipts.length; j++) {
          if (data[i].receipts[j].sha256 === h) {
            found.push(data[i].race + " (" + data[i].wave + "): counted as " + data[i].receipts[j].choice);
          }
        }
      }
      if (found.length) {
        show("counted: YES. " + found.join("; ") + ".", true);
      } else {
        show("not found: no counted vote has receipt " + code + ". Only the receipt of your latest vote is listed, and only for races whose results are published here.", false);
      }
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    return check();
  });
})();
