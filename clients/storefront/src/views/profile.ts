/**
 * "My profile": the signed-in customer's name, e-mail, phone and notification preferences
 * (`me`, `updateMyProfile`), and their saved addresses (add, edit, remove, make default), which
 * checkout offers with the default preselected.
 */
import type { ProfileFragment, SavedAddressFragment } from '@swiftcart/sdk';
import { client } from '../api.ts';
import { addressFromForm, addressText, h } from '../dom.ts';
import { describeError } from '../errors.ts';
import { currentSession } from '../session.ts';
import type { View } from './view.ts';

type Address = SavedAddressFragment;

const EMPTY_ADDRESS = { name: '', line1: '', line2: '', city: '', postalCode: '', country: '' };

function textField(label: string, name: string, value: string | null | undefined, attrs: Record<string, string | number | boolean> = {}): HTMLElement {
  return h('label', {}, label, h('input', { name, value: value ?? '', ...attrs }));
}

/** The fields of an address form, filled with `address`. */
function addressFields(address: Omit<Address, 'id' | 'isDefault'> | typeof EMPTY_ADDRESS): HTMLElement[] {
  return [
    textField('Name', 'name', address.name, { required: true, maxlength: 200, autocomplete: 'name' }),
    textField('Street', 'line1', address.line1, { required: true, maxlength: 200, autocomplete: 'address-line1' }),
    textField('Apartment, floor (optional)', 'line2', address.line2, { maxlength: 200, autocomplete: 'address-line2' }),
    textField('City', 'city', address.city, { required: true, maxlength: 100, autocomplete: 'address-level2' }),
    textField('Postal code', 'postalCode', address.postalCode, { required: true, maxlength: 20, autocomplete: 'postal-code' }),
    textField('Country (two letters, e.g. DE)', 'country', address.country, { required: true, minlength: 2, maxlength: 2, autocomplete: 'country' }),
  ];
}

/** An AddressInput from a form's fields. */
function addressInput(form: HTMLFormElement, isDefault: boolean) {
  return { ...addressFromForm(form), isDefault };
}

/**
 * Runs a change with `button` disabled, showing what went wrong in `error`; resolves with the
 * answer, or null when it failed.
 */
async function run<T>(button: HTMLButtonElement | null, error: HTMLElement, change: () => Promise<T>): Promise<T | null> {
  error.hidden = true;
  if (button) button.disabled = true;
  try {
    return await change();
  } catch (failure) {
    error.textContent = describeError(failure);
    error.hidden = false;
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

/** `#/profile`. */
export const profileView: View = (root) => {
  root.replaceChildren(h('h2', {}, 'My profile'));
  if (!currentSession()) {
    root.append(h('p', { class: 'error' }, 'Please sign in (top right) to see your profile.'));
    return () => {};
  }
  const loading = h('p', { class: 'status' }, 'Loading your profile…');
  root.append(loading);
  let gone = false;

  const details = (profile: ProfileFragment): HTMLFormElement => {
    const error = h('p', { class: 'error', role: 'alert', hidden: true });
    const saved = h('p', { class: 'saved', role: 'status', hidden: true }, 'Saved ✓');
    const form = h(
      'form',
      { class: 'profile' },
      textField('Name', 'name', profile.name, { maxlength: 200, autocomplete: 'name' }),
      textField('E-mail', 'email', profile.email, { type: 'email', maxlength: 254, autocomplete: 'email' }),
      textField('Phone (e.g. +4930123456)', 'phone', profile.phone, { type: 'tel', autocomplete: 'tel' }),
      h(
        'fieldset',
        {},
        h('legend', {}, 'Tell me about my orders'),
        h('label', { class: 'choice' }, h('input', { type: 'checkbox', name: 'notifyEmail', checked: profile.notificationPreferences.email }), 'by e-mail'),
        h(
          'label',
          { class: 'choice' },
          h('input', { type: 'checkbox', name: 'notifySms', checked: profile.notificationPreferences.sms }),
          'by SMS (needs a phone number)',
        ),
      ),
      error,
      saved,
      h('button', { type: 'submit', class: 'primary' }, 'Save profile'),
    );
    const fill = (p: ProfileFragment) => {
      const input = (name: string) => form.querySelector<HTMLInputElement>(`input[name=${name}]`)!;
      input('name').value = p.name ?? '';
      input('email').value = p.email ?? '';
      input('phone').value = p.phone ?? '';
      input('notifyEmail').checked = p.notificationPreferences.email;
      input('notifySms').checked = p.notificationPreferences.sms;
    };
    form.addEventListener('input', () => {
      saved.hidden = true;
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      saved.hidden = true;
      const data = new FormData(form);
      const text = (name: string) => String(data.get(name) ?? '').trim();
      // An empty field clears it; every field is sent, so the profile becomes what the form shows.
      const input = {
        name: text('name'),
        email: text('email'),
        phone: text('phone'),
        notificationPreferences: { email: data.has('notifyEmail'), sms: data.has('notifySms') },
      };
      void run(form.querySelector<HTMLButtonElement>('button[type=submit]'), error, () => client.updateMyProfile({ input })).then((answer) => {
        if (!answer || gone) return;
        // The server's own forms (a phone number without spaces, a trimmed name).
        fill(answer.updateMyProfile);
        showAddresses(answer.updateMyProfile.addresses);
        saved.hidden = false;
      });
    });
    return form;
  };

  const addressError = h('p', { class: 'error', role: 'alert', hidden: true });
  const list = h('ul', { class: 'addresses' });

  /** Runs an address change and shows the addresses it answers. */
  const changeAddresses = async (button: HTMLButtonElement | null, change: () => Promise<ProfileFragment>): Promise<boolean> => {
    const profile = await run(button, addressError, change);
    if (!profile || gone) return false;
    showAddresses(profile.addresses);
    return true;
  };

  const editForm = (item: HTMLElement, address: Address) => {
    const form = h(
      'form',
      { class: 'edit-address' },
      ...addressFields(address),
      h('button', { type: 'submit', class: 'primary' }, 'Save address'),
      h('button', { type: 'button', onclick: () => item.replaceChildren(...addressItem(item, address)) }, 'Cancel'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const input = addressInput(form, address.isDefault);
      void changeAddresses(
        form.querySelector<HTMLButtonElement>('button[type=submit]'),
        async () => (await client.updateAddress({ id: address.id, input })).updateAddress,
      );
    });
    item.replaceChildren(form);
    form.querySelector('input')?.focus();
  };

  const addressItem = (item: HTMLElement, address: Address): (Node | string)[] => [
    h('span', { class: 'text' }, addressText(address)),
    ' ',
    address.isDefault
      ? h('strong', { class: 'badge default' }, 'Default')
      : h(
          'button',
          {
            type: 'button',
            class: 'make-default',
            onclick: (event) =>
              void changeAddresses(
                event.currentTarget as HTMLButtonElement,
                async () => (await client.setDefaultAddress({ id: address.id })).setDefaultAddress,
              ),
          },
          'Make default',
        ),
    ' ',
    h('button', { type: 'button', class: 'edit', onclick: () => editForm(item, address) }, 'Edit'),
    ' ',
    h(
      'button',
      {
        type: 'button',
        class: 'remove',
        onclick: (event) =>
          void changeAddresses(event.currentTarget as HTMLButtonElement, async () => (await client.removeAddress({ id: address.id })).removeAddress),
      },
      'Remove',
    ),
  ];

  function showAddresses(addresses: readonly Address[]): void {
    list.replaceChildren(
      ...addresses.map((address) => {
        const item = h('li', { 'data-address': address.id, 'data-default': address.isDefault ? 'true' : 'false' });
        item.append(...addressItem(item, address));
        return item;
      }),
    );
    if (addresses.length === 0) list.replaceChildren(h('li', { class: 'none' }, 'No saved addresses yet.'));
  }

  const addForm = (): HTMLFormElement => {
    const form = h(
      'form',
      { class: 'add-address' },
      h('h4', {}, 'Add an address'),
      ...addressFields(EMPTY_ADDRESS),
      h('label', { class: 'choice' }, h('input', { type: 'checkbox', name: 'isDefault' }), 'Make it my default address'),
      h('button', { type: 'submit', class: 'primary' }, 'Save address'),
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const input = addressInput(form, new FormData(form).has('isDefault'));
      void changeAddresses(form.querySelector<HTMLButtonElement>('button[type=submit]'), async () => (await client.addAddress({ input })).addAddress).then(
        (added) => {
          if (added) form.reset();
        },
      );
    });
    return form;
  };

  void client.me().then(
    ({ me }) => {
      if (gone) return;
      showAddresses(me.addresses);
      loading.remove();
      root.append(
        details(me),
        h('h3', {}, 'Saved addresses'),
        h('p', { class: 'status' }, 'Checkout offers these, the default first.'),
        addressError,
        list,
        addForm(),
      );
    },
    (failure) => {
      if (!gone) loading.replaceWith(h('p', { class: 'error', role: 'alert' }, describeError(failure)));
    },
  );
  return () => {
    gone = true;
  };
};
