"""Like A1111 1.10's `modules/scripts.py`: the Script base class of txt2img/img2img scripts."""

import os

AlwaysVisible = object()


class Script:
    name = None
    section = None
    filename = None
    args_from = None
    args_to = None
    alwayson = False
    is_txt2img = False
    is_img2img = False
    tabname = None
    group = None
    create_group = True
    infotext_fields = None
    paste_field_names = None
    api_info = None
    on_before_component_elem_id = None
    on_after_component_elem_id = None
    setup_for_ui_only = False
    controls = None
    sorting_priority = 0

    def title(self):
        raise NotImplementedError()

    def ui(self, is_img2img):
        pass

    def show(self, is_img2img):
        return True

    def run(self, p, *args):
        pass

    def setup(self, p, *args):
        pass

    def before_process(self, p, *args):
        pass

    def process(self, p, *args):
        pass

    def postprocess(self, p, processed, *args):
        pass

    def describe(self):
        return ""

    def elem_id(self, item_id):
        tabkind = "img2img" if self.is_img2img else "txt2img"
        title = "".join(
            c for c in self.title().lower().replace(" ", "_") if c.isalnum() or c == "_"
        )
        return f"script_{tabkind}_{title}_{item_id}"


current_basedir = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def basedir():
    return current_basedir
