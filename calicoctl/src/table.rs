//! The two table layouts calicoctl prints, reproduced exactly so scripts that parse
//! Calico's output keep working.
//!
//! * `ps`/`wide` resource tables: Go's `tabwriter.NewWriter(out, 5, 1, 3, ' ', 0)` fed with
//!   every cell tab-terminated: a column is as wide as its widest cell plus 3 spaces (at
//!   least 5), the last column included, and a blank line follows the table.
//! * Boxed tables (`node status`, `ipam show`): olekukonko/tablewriter's default style:
//!   headers centred, numeric cells right-aligned, other cells left-aligned, one space of
//!   padding inside each border.

/// Renders a `get -o ps|wide` table.
pub fn render_columns(headers: &[&str], rows: &[Vec<String>]) -> String {
    const MIN_WIDTH: usize = 5;
    const PADDING: usize = 3;
    let widths: Vec<usize> = (0..headers.len())
        .map(|col| {
            let widest = rows
                .iter()
                .map(|row| row.get(col).map_or(0, |c| c.chars().count()))
                .chain(std::iter::once(headers[col].chars().count()))
                .max()
                .unwrap_or(0);
            (widest + PADDING).max(MIN_WIDTH)
        })
        .collect();
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        for (col, width) in widths.iter().enumerate() {
            let cell = row.get(col).map_or("", String::as_str);
            out.push_str(cell);
            out.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        out.push('\n');
    }
    out.push('\n');
    out
}

/// Renders a bordered table in tablewriter's default style.
pub fn render_boxed(headers: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..headers.len())
        .map(|col| {
            rows.iter()
                .map(|row| row.get(col).map_or(0, |c| c.chars().count()))
                .chain(std::iter::once(headers[col].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let border = {
        let mut line = String::from("+");
        for width in &widths {
            line.push_str(&"-".repeat(width + 2));
            line.push('+');
        }
        line.push('\n');
        line
    };
    let mut out = border.clone();
    out.push('|');
    for (header, width) in headers.iter().zip(&widths) {
        let space = width - header.chars().count();
        let left = space / 2;
        out.push_str(&format!(
            " {}{}{} |",
            " ".repeat(left),
            header,
            " ".repeat(space - left)
        ));
    }
    out.push('\n');
    out.push_str(&border);
    for row in rows {
        out.push('|');
        for (col, width) in widths.iter().enumerate() {
            let cell = row.get(col).map_or("", String::as_str);
            if is_numeric(cell) {
                out.push_str(&format!(" {cell:>width$} |"));
            } else {
                out.push_str(&format!(" {cell:<width$} |"));
            }
        }
        out.push('\n');
    }
    out.push_str(&border);
    out
}

/// tablewriter right-aligns cells matching its `decimal` pattern,
/// `^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?$`.
fn is_numeric(cell: &str) -> bool {
    let unsigned = cell.strip_prefix('-').unwrap_or(cell);
    let (whole, frac) = match unsigned.split_once('.') {
        Some((whole, frac)) => (whole, Some(frac)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let grouped = {
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or("");
        all_digits(first) && first.len() <= 3 && groups.all(|g| g.len() == 3 && all_digits(g))
    };
    (all_digits(whole) || grouped) && frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn boxed_matches_calico_node_status() {
        let got = render_boxed(
            &["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"],
            &[row(&[
                "172.17.8.102",
                "node-to-node mesh",
                "up",
                "23:30:04",
                "Established",
            ])],
        );
        let want = "\
+--------------+-------------------+-------+----------+-------------+
| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |
+--------------+-------------------+-------+----------+-------------+
| 172.17.8.102 | node-to-node mesh | up    | 23:30:04 | Established |
+--------------+-------------------+-------+----------+-------------+
";
        assert_eq!(got, want);
    }

    #[test]
    fn boxed_matches_calico_ipam_show() {
        let got = render_boxed(
            &["GROUPING", "CIDR", "IPS TOTAL", "IPS IN USE", "IPS FREE"],
            &[
                row(&["IP Pool", "10.65.0.0/16", "65536", "5 (0%)", "65531 (100%)"]),
                row(&["Block", "10.65.79.0/26", "64", "5 (8%)", "59 (92%)"]),
            ],
        );
        let want = "\
+----------+---------------+-----------+------------+--------------+
| GROUPING |     CIDR      | IPS TOTAL | IPS IN USE |   IPS FREE   |
+----------+---------------+-----------+------------+--------------+
| IP Pool  | 10.65.0.0/16  |     65536 | 5 (0%)     | 65531 (100%) |
| Block    | 10.65.79.0/26 |        64 | 5 (8%)     | 59 (92%)     |
+----------+---------------+-----------+------------+--------------+
";
        assert_eq!(got, want);
    }

    #[test]
    fn columns_pad_every_cell_like_go_tabwriter() {
        let got = render_columns(
            &["NAME", "ASN", "IPV4", "IPV6"],
            &[
                row(&["node1", "(64512)", "172.18.0.11/16", ""]),
                row(&["rr1", "64513", "172.18.0.2/16", ""]),
            ],
        );
        let want = "\
NAME    ASN       IPV4             IPV6   \n\
node1   (64512)   172.18.0.11/16          \n\
rr1     64513     172.18.0.2/16           \n\
\n";
        assert_eq!(got, want);
    }

    #[test]
    fn numeric_detection() {
        for yes in ["0", "65536", "-3", "1.5", "1,024"] {
            assert!(is_numeric(yes), "{yes}");
        }
        for no in ["", "5 (0%)", "172.17.8.102", "23:30:04", "1.", "-", "12,34"] {
            assert!(!is_numeric(no), "{no}");
        }
    }
}
