//! JSON put together from pieces already encoded, without parsing them again.

/// The JSON array of `items`, each already a JSON value, in order.
pub fn array_of<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|i| i.as_ref().len() + 1).sum::<usize>() + 1);
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_ref());
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::array_of;

    #[test]
    fn items_are_joined_into_one_array() {
        let none: [&[u8]; 0] = [];
        assert_eq!(array_of(&none), b"[]");
        assert_eq!(array_of(&[&b"{}"[..]]), b"[{}]");
        assert_eq!(
            array_of(&[b"1".to_vec(), b"{\"a\":2}".to_vec()]),
            b"[1,{\"a\":2}]"
        );
    }
}
