//! What the leading characters of a USCC say: authority, type, division.

/// The decoded parts of a code; unknown parts are `None` and produce a warning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decoded {
    /// Registration authority (登记管理部门), e.g. `民政`.
    pub authority: Option<&'static str>,
    /// Organization type (机构类别), e.g. `社会团体`.
    pub org_type: Option<&'static str>,
    /// The six-digit division code of positions 3–8.
    pub division_code: String,
    /// The division's name when it is one this project knows (Zhejiang and
    /// Hangzhou, including abolished districts whose codes live on).
    pub division: Option<&'static str>,
    /// Unknown authority or type: accepted, but worth a look.
    pub warnings: Vec<String>,
}

const AUTHORITIES: &[(char, &str)] = &[
    ('1', "机构编制"),
    ('2', "外交"),
    ('3', "司法行政"),
    ('4', "文化"),
    ('5', "民政"),
    ('6', "旅游"),
    ('7', "宗教"),
    ('8', "工会"),
    ('9', "市场监管"),
    ('A', "中央军委改革和编制办公室"),
    ('N', "农业"),
    ('G', "公安"),
    ('Y', "其他"),
];

const TYPES: &[(&str, &str)] = &[
    ("11", "机关"),
    ("12", "事业单位"),
    ("13", "中央编办直接管理机构编制的群众团体"),
    ("19", "其他"),
    ("21", "外国常驻新闻机构"),
    ("29", "其他"),
    ("31", "律师执业机构"),
    ("32", "公证处"),
    ("33", "基层法律服务所"),
    ("34", "司法鉴定机构"),
    ("35", "仲裁委员会"),
    ("39", "其他"),
    ("41", "外国在华文化中心"),
    ("49", "其他"),
    ("51", "社会团体"),
    ("52", "民办非企业单位"),
    ("53", "基金会"),
    ("59", "其他"),
    ("61", "外国旅游部门常驻代表机构"),
    ("62", "港澳台地区旅游部门常驻内地（大陆）代表机构"),
    ("69", "其他"),
    ("71", "宗教活动场所"),
    ("72", "宗教院校"),
    ("79", "其他"),
    ("81", "基层工会"),
    ("89", "其他"),
    ("91", "企业"),
    ("92", "个体工商户"),
    ("93", "农民专业合作社"),
    ("A1", "军队事业单位"),
    ("A9", "其他"),
    ("N1", "组级集体经济组织"),
    ("N2", "村级集体经济组织"),
    ("N3", "乡镇级集体经济组织"),
    ("N9", "其他"),
    ("G1", "境外非政府组织代表机构"),
    ("Y1", "其他"),
];

/// Division codes of Zhejiang and Hangzhou. Codes never change, so the
/// abolished 下城 (330103) and 江干 (330104) stay valid for orgs they registered.
const DIVISIONS: &[(&str, &str)] = &[
    ("330000", "浙江省"),
    ("330100", "杭州市"),
    ("330102", "上城区"),
    ("330103", "下城区"),
    ("330104", "江干区"),
    ("330105", "拱墅区"),
    ("330106", "西湖区"),
    ("330108", "滨江区"),
    ("330109", "萧山区"),
    ("330110", "余杭区"),
    ("330111", "富阳区"),
    ("330112", "临安区"),
    ("330113", "临平区"),
    ("330114", "钱塘区"),
    ("330122", "桐庐县"),
    ("330127", "淳安县"),
    ("330182", "建德市"),
    ("100000", "国家"),
];

/// The name of a division code this project knows (`330102` → `上城区`).
pub fn division_name(code: &str) -> Option<&'static str> {
    DIVISIONS.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// Decodes the first eight characters of a normalized, 18-character code.
pub fn decode(normalized: &str) -> Decoded {
    let mut out = Decoded::default();
    let Some(head) = normalized.get(..8) else {
        return out;
    };
    let authority = head.chars().next().unwrap_or('?');
    out.authority = AUTHORITIES
        .iter()
        .find(|(c, _)| *c == authority)
        .map(|(_, name)| *name);
    if out.authority.is_none() {
        out.warnings
            .push(format!("unknown registration authority {authority:?}"));
    }
    let type_code = &head[..2];
    out.org_type = TYPES
        .iter()
        .find(|(c, _)| *c == type_code)
        .map(|(_, name)| *name);
    if out.org_type.is_none() {
        out.warnings
            .push(format!("unknown organization type {type_code:?}"));
    }
    out.division_code = head[2..8].to_string();
    out.division = DIVISIONS
        .iter()
        .find(|(c, _)| *c == out.division_code)
        .map(|(_, name)| *name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn social_organization_in_an_abolished_district() {
        let d = decode("52330103MJ0000000X");
        assert_eq!(d.authority, Some("民政"));
        assert_eq!(d.org_type, Some("民办非企业单位"));
        assert_eq!(d.division, Some("下城区"));
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn unknown_type_warns() {
        let d = decode("5X330100MJ0000000X");
        assert_eq!(d.authority, Some("民政"));
        assert_eq!(d.org_type, None);
        assert_eq!(
            d.warnings,
            vec!["unknown organization type \"5X\"".to_string()]
        );
    }
}
