//! A scope's briefing as an Excel workbook, laid out as the member units
//! circulate them (DOMAIN.md §8): one table per sheet, a merged title row,
//! a date row, a frozen header, a serial-number first column, a total row
//! last, column widths for Chinese text, A4 landscape. Values only, never
//! formulas: phone previewers show a formula's cached value, which a
//! writer without a calculation engine leaves at 0.

use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

use super::BriefError;
use super::tables::{Cell, Data, ScopeBrief, Table};

/// Rows above the first data row: title, date, header.
pub(crate) const HEADER_ROWS: u32 = 3;

/// A4 in Excel's paper-size table.
const A4: u8 = 9;

const FONT: &str = "宋体";

fn fail(e: XlsxError) -> BriefError {
    BriefError::Warehouse(format!("workbook: {e}"))
}

/// Display width of text in Excel's character units: a CJK (full-width)
/// character takes two, which auto-fit undercounts.
pub(crate) fn text_width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let u = c as u32;
            let wide = (0x1100..=0x115F).contains(&u)
                || (0x2E80..=0xA4CF).contains(&u)
                || (0xAC00..=0xD7A3).contains(&u)
                || (0xF900..=0xFAFF).contains(&u)
                || (0xFE30..=0xFE4F).contains(&u)
                || (0xFF00..=0xFF60).contains(&u)
                || (0xFFE0..=0xFFE6).contains(&u)
                || (0x20000..=0x3FFFD).contains(&u);
            if wide { 2 } else { 1 }
        })
        .sum()
}

struct Formats {
    title: Format,
    date: Format,
    header: Format,
    text: Format,
    int: Format,
    pct: Format,
    num: Format,
    total_text: Format,
    total_int: Format,
    total_pct: Format,
    total_num: Format,
}

impl Formats {
    fn new() -> Self {
        let base = Format::new()
            .set_font_name(FONT)
            .set_font_size(11)
            .set_border(FormatBorder::Thin);
        let total = base
            .clone()
            .set_bold()
            .set_background_color(Color::RGB(0xF2F2F2))
            .set_border_top(FormatBorder::Double);
        Self {
            title: Format::new()
                .set_font_name(FONT)
                .set_font_size(16)
                .set_bold()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            date: Format::new()
                .set_font_name(FONT)
                .set_font_size(10)
                .set_align(FormatAlign::Right),
            header: base
                .clone()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_background_color(Color::RGB(0xDDEBF7)),
            text: base.clone().set_text_wrap(),
            int: base.clone().set_num_format("#,##0"),
            pct: base.clone().set_num_format("0.0%"),
            num: base.clone().set_num_format("0.0"),
            total_text: total.clone().set_align(FormatAlign::Center),
            total_int: total.clone().set_num_format("#,##0"),
            total_pct: total.clone().set_num_format("0.0%"),
            total_num: total.set_num_format("0.0"),
        }
    }
}

fn write_cell(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    cell: &Cell,
    f: &Formats,
    total: bool,
) -> Result<(), XlsxError> {
    let (text, int, pct, num) = if total {
        (&f.total_text, &f.total_int, &f.total_pct, &f.total_num)
    } else {
        (&f.text, &f.int, &f.pct, &f.num)
    };
    match cell {
        Cell::Text(s) => ws.write_string_with_format(row, col, s, text)?,
        Cell::Int(n) => ws.write_number_with_format(row, col, *n as f64, int)?,
        // Shares and scores are rounded as people read them; the format
        // shows what the value holds.
        Cell::Pct(p) => {
            ws.write_number_with_format(row, col, (p * 1000.0).round() / 1000.0, pct)?
        }
        Cell::Num(x) => ws.write_number_with_format(row, col, (x * 10.0).round() / 10.0, num)?,
        Cell::Empty => ws.write_blank(row, col, text)?,
    };
    Ok(())
}

fn sheet(
    wb: &mut Workbook,
    data: &Data,
    brief: &ScopeBrief,
    t: &Table,
    f: &Formats,
) -> Result<(), XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name(t.sheet.chars().take(31).collect::<String>())?;
    let ncols = t.columns.len() as u16 + 1;
    let last = ncols - 1;
    let title = format!("{} · {} · {}", data.period.title_zh(), brief.name, t.title);
    ws.merge_range(0, 0, 0, last, &title, &f.title)?;
    ws.set_row_height(0, 30)?;
    let date = format!(
        "统计期：{} 至 {}（已发布 {} 晚）    {}",
        data.period.start,
        data.period.end,
        data.nights.len(),
        t.note
    );
    ws.merge_range(1, 0, 1, last, &date, &f.date)?;
    ws.set_row_height(1, 30)?;
    ws.write_string_with_format(2, 0, "序号", &f.header)?;
    let mut widths: Vec<usize> = vec![text_width("序号")];
    for (i, c) in t.columns.iter().enumerate() {
        ws.write_string_with_format(2, i as u16 + 1, c, &f.header)?;
        widths.push(text_width(c));
    }
    ws.set_row_height(2, 32)?;
    let mut row = HEADER_ROWS;
    for (n, r) in t.rows.iter().enumerate() {
        ws.write_number_with_format(row, 0, (n + 1) as f64, &f.int)?;
        widths[0] = widths[0].max((n + 1).to_string().len());
        for (i, c) in r.iter().enumerate() {
            write_cell(ws, row, i as u16 + 1, c, f, false)?;
            widths[i + 1] = widths[i + 1].max(text_width(&c.display()));
        }
        row += 1;
    }
    if let Some(total) = &t.total {
        ws.write_string_with_format(row, 0, "合计", &f.total_text)?;
        widths[0] = widths[0].max(text_width("合计"));
        for (i, c) in total.iter().enumerate() {
            write_cell(ws, row, i as u16 + 1, c, f, true)?;
            widths[i + 1] = widths[i + 1].max(text_width(&c.display()));
        }
    }
    for (i, w) in widths.iter().enumerate() {
        // Two characters of padding; long free text wraps at 60.
        ws.set_column_width(i as u16, ((*w + 2).min(60)) as f64)?;
    }
    ws.set_freeze_panes(HEADER_ROWS, 0)?;
    ws.set_landscape();
    ws.set_paper_size(A4);
    ws.set_print_fit_to_pages(1, 0);
    ws.set_repeat_rows(2, 2)?;
    Ok(())
}

/// The workbook of one scope.
pub(crate) fn workbook(data: &Data, brief: &ScopeBrief) -> Result<Vec<u8>, BriefError> {
    let mut wb = Workbook::new();
    let f = Formats::new();
    for t in &brief.tables {
        sheet(&mut wb, data, brief, t, &f).map_err(fail)?;
    }
    wb.save_to_buffer().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::text_width;

    #[test]
    fn chinese_characters_count_twice() {
        assert_eq!(text_width("合计"), 4);
        assert_eq!(text_width("OPS-03 双随机"), 13);
        assert_eq!(text_width("（无）"), 6);
        assert_eq!(text_width("91.7%"), 5);
    }
}
