"""Like A1111 1.10's `modules/shared_options.py`: the built-in settings (those the extension
and this fake read), with A1111's keys and defaults."""

import os

from modules.options import OptionInfo, options_section
from modules.paths_internal import default_output_dir

restricted_opts = {
    "samples_filename_pattern",
    "directories_filename_pattern",
    "outdir_samples",
    "outdir_txt2img_samples",
}

options_templates = {}

options_templates.update(
    options_section(
        ("saving-images", "Saving images/grids", "saving"),
        {
            "samples_save": OptionInfo(True, "Always save all generated images"),
            "samples_format": OptionInfo("png", "File format for images"),
            "samples_filename_pattern": OptionInfo("", "Images filename pattern"),
            "save_images_add_number": OptionInfo(True, "Add number to filename when saving"),
            "save_incomplete_images": OptionInfo(False, "Save incomplete images"),
        },
    )
)

options_templates.update(
    options_section(
        ("saving-paths", "Paths for saving", "saving"),
        {
            "outdir_samples": OptionInfo("", "Output directory for images"),
            "outdir_txt2img_samples": OptionInfo(
                os.path.join(default_output_dir, "txt2img-images"),
                "Output directory for txt2img images",
            ),
        },
    )
)

options_templates.update(
    options_section(
        ("face-restoration", "Face restoration", "postprocessing"),
        {
            "face_restoration": OptionInfo(False, "Restore faces"),
            "face_restoration_model": OptionInfo("CodeFormer", "Face restoration model"),
        },
    )
)

options_templates.update(
    options_section(
        ("sd", "Stable Diffusion", "sd"),
        {
            "CLIP_stop_at_last_layers": OptionInfo(1, "Clip skip"),
        },
    )
)

options_templates.update(
    options_section(
        ("sampler-params", "Sampler parameters", "sd"),
        {
            "s_min_uncond": OptionInfo(0.0, "Negative Guidance minimum sigma"),
            "s_churn": OptionInfo(0.0, "sigma churn"),
            "s_tmin": OptionInfo(0.0, "sigma tmin"),
            "s_tmax": OptionInfo(0.0, "sigma tmax"),
            "s_noise": OptionInfo(1.0, "sigma noise"),
        },
    )
)
