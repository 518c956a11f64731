//! Seed media parsers on arbitrary bytes: the ISO9660 reader (as an image), `ovf-env.xml`,
//! ConfigDrive vendor-data and the `ds=nocloud` argument.
#![no_main]

use egs_datasource::azure::parse_ovf_env;
use egs_datasource::configdrive::convert_vendor_data;
use egs_datasource::media::iso9660::IsoImage;
use egs_datasource::nocloud::parse_ds_argument;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Put the bytes where the volume descriptors live so the reader gets past the header.
    let mut image = vec![0u8; 16 * 2048];
    image.extend_from_slice(data);
    if let Ok(mut iso) = IsoImage::open(std::io::Cursor::new(image)) {
        let _ = iso.label();
        for path in ["meta-data", "openstack/latest/meta_data.json", "a/b/c/d"] {
            let _ = iso.read_file(path, 1 << 20);
        }
    }
    let _ = convert_vendor_data(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_ovf_env(text);
        let _ = parse_ds_argument(text);
    }
});
