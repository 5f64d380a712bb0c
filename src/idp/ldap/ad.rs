//! What Active Directory does differently: the binary `objectGUID`, passwords written as
//! `unicodePwd`, the account state in `userAccountControl` and `pwdLastSet`, and the reasons
//! it gives in a refused bind's diagnostic message.

/// An `objectGUID` as Keycloak prints it (the first three groups little-endian).
pub fn guid(b: &[u8]) -> String {
    if b.len() != 16 {
        return b.iter().map(|x| format!("{x:02x}")).collect();
    }
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// The value of `unicodePwd` for `password`: the password in double quotes, UTF-16LE.
pub fn unicode_pwd(password: &str) -> Vec<u8> {
    format!("\"{password}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

/// `userAccountControl`'s ACCOUNTDISABLE flag.
const ACCOUNT_DISABLE: u32 = 0x2;

/// Whether `userAccountControl` says the account is disabled.
pub fn disabled(user_account_control: &str) -> bool {
    user_account_control
        .trim()
        .parse::<u32>()
        .is_ok_and(|v| v & ACCOUNT_DISABLE != 0)
}

/// `userAccountControl` with the account enabled or disabled (other flags kept).
pub fn with_disabled(user_account_control: Option<&str>, disabled: bool) -> String {
    // 512 is NORMAL_ACCOUNT, what a new account gets.
    let v = user_account_control
        .and_then(|v| v.trim().parse::<u32>().ok())
        .unwrap_or(512);
    if disabled {
        v | ACCOUNT_DISABLE
    } else {
        v & !ACCOUNT_DISABLE
    }
    .to_string()
}

/// Why Active Directory refused a bind, from the `data NNN` of its diagnostic message
/// (`80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 773, v3839`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindRefusal {
    /// 773: the password is right but must be changed (`pwdLastSet` is 0).
    MustChangePassword,
    /// 532: the password is right but expired.
    PasswordExpired,
    /// 533: the account is disabled.
    Disabled,
    /// 775: the directory locked the account.
    Locked,
    /// Anything else, usually 52e: wrong password.
    Other,
}

pub fn bind_refusal(diagnostic: &str) -> BindRefusal {
    let code = diagnostic
        .split(", data ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(str::trim);
    match code {
        Some("773") => BindRefusal::MustChangePassword,
        Some("532") => BindRefusal::PasswordExpired,
        Some("533") => BindRefusal::Disabled,
        Some("775") => BindRefusal::Locked,
        _ => BindRefusal::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_print_as_keycloak_prints_them() {
        let b: Vec<u8> = (0u8..16).collect();
        assert_eq!(guid(&b), "03020100-0504-0706-0809-0a0b0c0d0e0f");
        assert_eq!(guid(&[0xab, 0x01]), "ab01");
    }

    #[test]
    fn passwords_are_quoted_utf16le() {
        assert_eq!(
            unicode_pwd("Ab1"),
            [0x22, 0, 0x41, 0, 0x62, 0, 0x31, 0, 0x22, 0]
        );
        // Outside the BMP: a surrogate pair, little-endian.
        assert_eq!(
            unicode_pwd("😀"),
            [0x22, 0, 0x3d, 0xd8, 0x00, 0xde, 0x22, 0]
        );
    }

    #[test]
    fn account_controls() {
        assert!(!disabled("512") && disabled("514") && disabled(" 66050 "));
        assert!(!disabled("") && !disabled("x"));
        assert_eq!(with_disabled(Some("512"), true), "514");
        assert_eq!(with_disabled(Some("66050"), false), "66048");
        assert_eq!(with_disabled(None, false), "512");
    }

    #[test]
    fn bind_refusals_are_read_from_the_diagnostic() {
        let d = |code: &str| {
            format!("80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data {code}, v3839")
        };
        assert_eq!(bind_refusal(&d("773")), BindRefusal::MustChangePassword);
        assert_eq!(bind_refusal(&d("532")), BindRefusal::PasswordExpired);
        assert_eq!(bind_refusal(&d("533")), BindRefusal::Disabled);
        assert_eq!(bind_refusal(&d("775")), BindRefusal::Locked);
        assert_eq!(bind_refusal(&d("52e")), BindRefusal::Other);
        assert_eq!(bind_refusal("invalid credentials"), BindRefusal::Other);
    }
}
