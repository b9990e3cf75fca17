"""Like A1111 1.10's `modules/processing.py`: what a script receives (p) and returns."""


class StableDiffusionProcessing:
    def __init__(
        self,
        prompt="",
        negative_prompt="",
        seed=-1,
        subseed=-1,
        subseed_strength=0,
        sampler_name=None,
        scheduler=None,
        batch_size=1,
        n_iter=1,
        steps=50,
        cfg_scale=7.0,
        width=512,
        height=512,
        override_settings=None,
        do_not_save_samples=False,
        do_not_save_grid=False,
    ):
        self.prompt = prompt
        self.negative_prompt = negative_prompt
        self.seed = seed
        self.subseed = subseed
        self.subseed_strength = subseed_strength
        self.sampler_name = sampler_name
        self.scheduler = scheduler
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.steps = steps
        self.cfg_scale = cfg_scale
        self.width = width
        self.height = height
        self.override_settings = override_settings or {}
        self.do_not_save_samples = do_not_save_samples
        self.do_not_save_grid = do_not_save_grid
        self.comments = {}
        self.extra_generation_params = {}


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    def __init__(self, enable_hr=False, denoising_strength=0.75, hr_scale=2.0, **kwargs):
        super().__init__(**kwargs)
        self.enable_hr = enable_hr
        self.denoising_strength = denoising_strength
        self.hr_scale = hr_scale


class Processed:
    def __init__(
        self,
        p,
        images_list,
        seed=-1,
        info="",
        subseed=None,
        all_prompts=None,
        all_negative_prompts=None,
        all_seeds=None,
        all_subseeds=None,
        index_of_first_image=0,
        infotexts=None,
        comments="",
    ):
        self.images = images_list
        self.prompt = p.prompt
        self.negative_prompt = p.negative_prompt
        self.seed = seed
        self.subseed = subseed
        self.subseed_strength = p.subseed_strength
        self.info = info
        self.comments = "".join(f"{comment}\n" for comment in p.comments)
        self.width = p.width
        self.height = p.height
        self.sampler_name = p.sampler_name
        self.cfg_scale = p.cfg_scale
        self.steps = p.steps
        self.batch_size = p.batch_size
        self.all_prompts = all_prompts or [self.prompt]
        self.all_negative_prompts = all_negative_prompts or [self.negative_prompt]
        self.all_seeds = all_seeds or [seed]
        self.all_subseeds = all_subseeds or [subseed]
        self.index_of_first_image = index_of_first_image
        self.infotexts = infotexts or [info] * len(images_list)
