//! A self-contained HTML page: headings, text, tables and PNG pictures
//! inlined as `data:` URLs, so the file opens anywhere with no server, no
//! network and no other files.

use crate::canvas::Canvas;

/// HTML-escapes text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1320px;margin:2em auto;padding:0 1em;color:#222}\
h1{font-size:1.6em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}\
figure{margin:1em 0}img{max-width:100%;image-rendering:pixelated;border:1px solid #eee}\
figcaption{color:#555;font-size:.9em}pre{background:#f7f7f7;padding:.8em;overflow-x:auto}";

/// A report being built, section by section.
#[derive(Default)]
pub struct Report {
    title: String,
    body: String,
    images: usize,
}

impl Report {
    pub fn new(title: &str) -> Self {
        Report {
            title: title.into(),
            ..Default::default()
        }
    }

    pub fn heading(&mut self, text: &str) -> &mut Self {
        self.body += &format!("<h2>{}</h2>\n", escape(text));
        self
    }

    pub fn paragraph(&mut self, text: &str) -> &mut Self {
        self.body += &format!("<p>{}</p>\n", escape(text));
        self
    }

    /// Preformatted text (a config file, a log).
    pub fn pre(&mut self, text: &str) -> &mut Self {
        self.body += &format!("<pre>{}</pre>\n", escape(text));
        self
    }

    pub fn table(&mut self, header: &[&str], rows: &[Vec<String>]) -> &mut Self {
        self.body += "<table>\n<tr>";
        for h in header {
            self.body += &format!("<th>{}</th>", escape(h));
        }
        self.body += "</tr>\n";
        for row in rows {
            self.body += "<tr>";
            for cell in row {
                self.body += &format!("<td>{}</td>", escape(cell));
            }
            self.body += "</tr>\n";
        }
        self.body += "</table>\n";
        self
    }

    /// A picture with a caption, inlined as a PNG `data:` URL.
    pub fn image(&mut self, picture: &Canvas, caption: &str) -> &mut Self {
        self.images += 1;
        self.body += &format!(
            "<figure><img src=\"data:image/png;base64,{}\" width=\"{}\" height=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
            base64(&picture.to_png()),
            picture.width,
            picture.height,
            escape(caption),
            escape(caption)
        );
        self
    }

    /// How many pictures the report holds.
    pub fn image_count(&self) -> usize {
        self.images
    }

    /// The whole page.
    pub fn to_html(&self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n{}</body>\n</html>\n",
            self.body,
            t = escape(&self.title)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in cases {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain:?}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn text_is_escaped_and_images_inlined() {
        let mut r = Report::new("run <1>");
        r.heading("a & b")
            .table(&["k", "v"], &[vec!["<x>".into(), "\"y\"".into()]])
            .image(&Canvas::new(3, 2, [1, 2, 3]), "tiny");
        let html = r.to_html();
        assert!(html.contains("<title>run &lt;1&gt;</title>"));
        assert!(html.contains("<h2>a &amp; b</h2>"));
        assert!(html.contains("<td>&lt;x&gt;</td><td>&quot;y&quot;</td>"));
        assert!(html.contains("src=\"data:image/png;base64,iVBORw0KGgo"));
        assert!(
            !html.contains("http"),
            "nothing is fetched from the network"
        );
        assert_eq!(r.image_count(), 1);
    }
}
