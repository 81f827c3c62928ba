//! Tables as docker prints them: left-aligned columns, each at least 10 wide and 3
//! spaces wider than its widest cell (docker's tabwriter settings), the last one
//! unpadded.

/// Renders `header` and `rows` as lines ending in `\n`.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (at, cell) in row.iter().enumerate() {
            if at + 1 == columns {
                line.push_str(cell);
            } else {
                let width = (widths[at] + 3).max(10);
                line.push_str(&format!("{cell:width$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_are_padded_as_docker_pads_them() {
        let table = super::render(
            &["DRIVER", "VOLUME NAME"],
            &[vec!["local".into(), "data".into()]],
        );
        assert_eq!(table, "DRIVER    VOLUME NAME\nlocal     data\n");
    }
}
