//! Reading the DOM Chromium dumps: its start tags and attributes, the links, images and
//! assets they name, the anchors a page offers, and where a reference leads. A small
//! scanner, not an HTML parser: a serialized DOM is regular (quoted attributes,
//! lower-case names, escaped text), and only start tags matter here.

/// What a missing target is called, by the element and attribute that name it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Link,
    Image,
    Asset,
}
/// The elements and attributes that name another file of the site.
const REFERENCES: &[(&str, &str, Kind)] = &[
    ("a", "href", Kind::Link),
    ("area", "href", Kind::Link),
    ("iframe", "src", Kind::Link),
    ("img", "src", Kind::Image),
    ("object", "data", Kind::Image),
    ("embed", "src", Kind::Image),
    ("image", "href", Kind::Image),
    ("image", "xlink:href", Kind::Image),
    ("link", "href", Kind::Asset),
    ("script", "src", Kind::Asset),
];
/// A start tag of a serialized DOM: its name and attributes, lower-case names.
#[derive(Debug, PartialEq)]
pub struct Tag {
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// The start tags of a serialized DOM, entities in attribute values decoded. Comments
/// and the raw text of `<script>` and `<style>` are skipped: a string in a script
/// is not a link.
pub fn tags(html: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue; // an end tag, <!DOCTYPE>, or a '<' in text
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..end].to_ascii_lowercase();
        let (attributes, after) = attributes(&rest[end..]);
        rest = after;
        if name == "script" || name == "style" {
            rest = rest
                .find(&format!("</{name}"))
                .map_or("", |end| &rest[end..]);
        }
        tags.push(Tag { name, attributes });
    }
    tags
}

/// The attributes up to a tag's `>`, and the text after it.
fn attributes(mut rest: &str) -> (Vec<(String, String)>, &str) {
    let mut attributes = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return (attributes, rest);
        }
        if let Some(after) = rest.strip_prefix('>') {
            return (attributes, after);
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/'))
            .unwrap_or(rest.len());
        let name = rest[..end].to_ascii_lowercase();
        rest = rest[end..].trim_start();
        let mut value = "";
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            (value, rest) = match after.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    after[1..].split_once(quote).unwrap_or((&after[1..], ""))
                }
                _ => after.split_at(
                    after
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(after.len()),
                ),
            };
        }
        if !name.is_empty() {
            attributes.push((name, decode_entities(value)));
        }
    }
}

/// Decodes the character references a DOM serializer writes in attribute values.
fn decode_entities(value: &str) -> String {
    let mut decoded = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('&') {
        decoded.push_str(&rest[..start]);
        rest = &rest[start..];
        let entity = rest[1..]
            .split_once(';')
            .map(|(entity, _)| entity)
            .filter(|e| e.len() <= 8);
        let character = entity.and_then(|entity| match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some('\u{a0}'),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(|code| code.ok())
                .and_then(char::from_u32),
        });
        match (entity, character) {
            (Some(entity), Some(character)) => {
                decoded.push(character);
                rest = &rest[entity.len() + 2..];
            }
            _ => {
                decoded.push('&');
                rest = &rest[1..];
            }
        }
    }
    decoded + rest
}

/// The links, images and assets the tags name, as written.
pub fn references(tags: &[Tag]) -> impl Iterator<Item = (Kind, String)> + '_ {
    tags.iter().flat_map(|tag| {
        REFERENCES
            .iter()
            .filter(move |(element, _, _)| *element == tag.name)
            .flat_map(move |(_, attribute, kind)| {
                tag.attributes
                    .iter()
                    .filter(move |(name, _)| name == attribute)
                    .map(|(_, value)| (*kind, value.clone()))
            })
    })
}

/// The anchors a page offers: every `id`, and the `name` of an `<a>`.
pub fn ids(tags: &[Tag]) -> impl Iterator<Item = &str> {
    tags.iter().flat_map(|tag| {
        tag.attributes
            .iter()
            .filter(|(name, _)| name == "id" || (tag.name == "a" && name == "name"))
            .map(|(_, value)| value.as_str())
    })
}

/// Where a reference in a page leads.
#[derive(Debug, PartialEq)]
pub enum Target {
    /// Another site, or a scheme that is not a file (mailto:, javascript:, data:).
    Elsewhere,
    /// A path in the site (percent-decoded, no `.` or `..`), and the fragment if it
    /// names an anchor (not empty, not `top`: those always scroll to the top).
    Inside {
        path: String,
        fragment: Option<String>,
    },
    /// A relative path that climbs out of the site's root.
    Outside,
}

pub fn resolve(page: &str, reference: &str, origin: &str) -> Target {
    let reference = reference.trim();
    let reference = match reference.strip_prefix(origin) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => reference,
    };
    let scheme = reference.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    });
    if scheme || reference.starts_with("//") {
        return Target::Elsewhere;
    }
    let (reference, fragment) = reference.split_once('#').unwrap_or((reference, ""));
    let reference = reference.split('?').next().unwrap_or_default();
    let mut segments: Vec<&str> = Vec::new();
    if reference.is_empty() {
        segments.extend(page.split('/'));
    } else {
        if !reference.starts_with('/') {
            segments.extend(page.split('/'));
            segments.pop(); // the page's own name
        }
        for segment in reference.split('/') {
            match segment {
                "" | "." => {}
                ".." if segments.pop().is_none() => return Target::Outside,
                ".." => {}
                _ => segments.push(segment),
            }
        }
        if reference.ends_with('/') {
            segments.push("index.html");
        }
    }
    let fragment = percent_decode(fragment);
    Target::Inside {
        path: percent_decode(&segments.join("/")),
        fragment: (!fragment.is_empty() && !fragment.eq_ignore_ascii_case("top"))
            .then_some(fragment),
    }
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                i += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:1";

    #[test]
    fn tags_and_attributes_are_read_as_a_browser_serializes_them() {
        let html = r#"<!DOCTYPE html><!-- <a href="comment.html"> --><p class=x>1 < 2</p>
            <a href="a.html?x=1&amp;y=&quot;2&quot;" download><IMG SRC='b.svg'/>
            <style>a[href="style.html"] {}</style><script>"<img src=script.png>"</script><br/>"#;
        let tags = tags(html);
        let names: Vec<&str> = tags.iter().map(|tag| tag.name.as_str()).collect();
        assert_eq!(names, ["p", "a", "img", "style", "script", "br"]);
        let attributes = |tag: &Tag| {
            tag.attributes
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(attributes(&tags[0]), ["class=x"]);
        assert_eq!(
            attributes(&tags[1]),
            ["href=a.html?x=1&y=\"2\"", "download="]
        );
        assert_eq!(attributes(&tags[2]), ["src=b.svg"]);
        assert_eq!(
            decode_entities("&#x41;&#66;&unknown; & &amp"),
            "AB&unknown; & &amp"
        );
    }

    #[test]
    fn references_resolve_against_their_page() {
        let inside = |path: &str, fragment: Option<&str>| Target::Inside {
            path: path.to_string(),
            fragment: fragment.map(str::to_string),
        };
        let cases = [
            (
                "index.html",
                "02-namespaces.html#the-pid-namespace",
                inside("02-namespaces.html", Some("the-pid-namespace")),
            ),
            (
                "a/b.html",
                "../figures/x%20y.svg?v=2",
                inside("figures/x y.svg", None),
            ),
            ("a/b.html", "/c.html#", inside("c.html", None)),
            ("a/b.html", "#Top", inside("a/b.html", None)),
            ("a/b.html", "./", inside("a/index.html", None)),
            (
                "index.html",
                &format!("{ORIGIN}/print.html"),
                inside("print.html", None),
            ),
            ("index.html", "../../etc/passwd", Target::Outside),
            ("index.html", "https://docs.rs/nix", Target::Elsewhere),
            ("index.html", "//example.org/x.html", Target::Elsewhere),
            ("index.html", "javascript:void(0)", Target::Elsewhere),
        ];
        for (page, reference, target) in cases {
            assert_eq!(
                resolve(page, reference, ORIGIN),
                target,
                "{reference} in {page}"
            );
        }
    }
}
