"""Like A1111 1.10's `modules/images.py` `save_image`: writes a generated image into the
outputs folder with its infotext as the PNG's `parameters` text, numbered like A1111
(`00000-<seed>.png` with the default filename pattern), and remembers where it went."""

import contextlib
import os


def get_next_sequence_number(path, basename):
    result = -1
    if basename != "":
        basename = f"{basename}-"
    prefix_length = len(basename)
    for p in os.listdir(path):
        if p.startswith(basename):
            parts = os.path.splitext(p[prefix_length:])[0].split("-")
            with contextlib.suppress(ValueError):
                result = max(int(parts[0]), result)
    return result + 1


def save_image(
    image,
    path,
    basename,
    seed=None,
    prompt=None,
    extension="png",
    info=None,
    short_filename=False,
    no_prompt=False,
    grid=False,
    pnginfo_section_name="parameters",
    p=None,
    existing_info=None,
    forced_filename=None,
    suffix="",
    save_to_dirs=None,
):
    from PIL import PngImagePlugin

    from modules.shared import opts

    os.makedirs(path, exist_ok=True)
    if forced_filename is None:
        pattern = opts.samples_filename_pattern or "[seed]"
        file_decoration = pattern.replace("[seed]", str(seed)) + suffix
        add_number = opts.save_images_add_number or file_decoration == ""
        if file_decoration != "" and add_number:
            file_decoration = f"-{file_decoration}"
        if add_number:
            basecount = get_next_sequence_number(path, basename)
            fullfn = None
            for i in range(500):
                fn = f"{basecount + i:05}" if basename == "" else f"{basename}-{basecount + i:04}"
                fullfn = os.path.join(path, f"{fn}{file_decoration}.{extension}")
                if not os.path.exists(fullfn):
                    break
        else:
            fullfn = os.path.join(path, f"{file_decoration}.{extension}")
    else:
        fullfn = os.path.join(path, f"{forced_filename}.{extension}")

    pnginfo = PngImagePlugin.PngInfo()
    for key, value in (existing_info or {}).items():
        if isinstance(key, str) and isinstance(value, str):
            pnginfo.add_text(key, value)
    if info is not None:
        pnginfo.add_text(pnginfo_section_name, info)
    image.save(fullfn, pnginfo=pnginfo)
    image.already_saved_as = fullfn
    return fullfn, None
